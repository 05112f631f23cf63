"""SIGTERM and SIGHUP handled like Ctrl-C: what systemd, `timeout`, a job scheduler or a closed
terminal sends ends a run the way Ctrl-C does. The recording or trace being made is finished
and kept, one line says what was kept, and the exit status is the conventional 128 + signal
(143 for SIGTERM, 129 for SIGHUP; 130 for Ctrl-C)."""

import signal

HANDLED = (signal.SIGTERM, signal.SIGHUP)


class Terminated(KeyboardInterrupt):
    """SIGTERM or SIGHUP arrived: raised in the main thread wherever it is, as SIGINT raises
    KeyboardInterrupt, so the same `finally` and `except KeyboardInterrupt` paths finish up."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def exit_status(interrupt: KeyboardInterrupt) -> int:
    return 128 + (interrupt.signum if isinstance(interrupt, Terminated) else signal.SIGINT)


def name(interrupt: KeyboardInterrupt) -> str:
    return signal.Signals(interrupt.signum).name if isinstance(interrupt, Terminated) else "Ctrl-C"


def stop_like_ctrl_c() -> None:
    """From now on SIGTERM and SIGHUP raise Terminated in the main thread, once: after the
    first, they are ignored, so that finishing the file is not cut short by a second."""

    def handler(signum: int, frame) -> None:
        for sig in HANDLED:
            signal.signal(sig, signal.SIG_IGN)
        raise Terminated(signum)

    for sig in HANDLED:
        signal.signal(sig, handler)
