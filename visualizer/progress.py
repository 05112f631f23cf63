"""Progress on stderr, drawn by tqdm and set up here once for every command: a trace's tokens, a
render's frames and a loading model's stages, apart from any one front end so that
`run --terminal`, `trace` and `render` show them alike.

On a terminal each is one line updated in place. In a log (stderr a file or a pipe) each is a
line of its own where it has moved on: tqdm would write its carriage returns there, and a file
keeps them all as one long line."""

import math
import os
import re
import sys
import time

from tqdm import tqdm

TTY_EVERY_S = 0.1  # a terminal's redraws, at most
LOG_PARTS = 10  # a log's line per tenth of a count
LOG_COUNT_S = 10.0  # ...and per stage of a load, a count within it every 10 s at most
# tqdm's own, but the rate always per second (never "4.49s/ tokens"); a log's without the bar
COUNT = "{n_fmt}/{total_fmt}{unit} [{elapsed}<{remaining}, {rate_noinv_fmt}]"
TTY_COUNT, LOG_COUNT = "{l_bar}{bar}| " + COUNT, "{desc}: " + COUNT
NUMBER = re.compile(r"\d+(?:,\d{3})*")  # "1,234 of 2,000 tensors"


def counter(what: str, total: int, unit: str) -> tqdm:
    """A bar of `total` `unit`s, for a count known ahead (a trace's tokens, a render's frames):
    `update` it, and close it (or use it as a context manager) when the count ends."""
    # smoothing 0: the rate is the mean since the start, not of the last few updates, which
    # come in bursts from a render's processes
    count = {"desc": what, "total": total, "unit": f" {unit}", "smoothing": 0}
    if sys.stderr.isatty():
        return tqdm(bar_format=TTY_COUNT, **count, **_terminal())
    return _Log(bar_format=LOG_COUNT, miniters=max(1, math.ceil(total / LOG_PARTS)), **count)


def _terminal() -> dict:
    """tqdm's options on a terminal: it follows the terminal's size, or where the terminal has
    none (a pseudo-terminal nobody sized) draws 80 columns, not nothing."""
    try:
        size = os.get_terminal_size(sys.stderr.fileno())
    except (OSError, ValueError):
        size = os.terminal_size((0, 0))
    if size.columns and size.lines:
        shape = {"dynamic_ncols": True}
    else:
        shape = {"ncols": size.columns or 80, "nrows": size.lines or 24}
    return {"file": sys.stderr, "mininterval": TTY_EVERY_S, **shape}


class _Log(tqdm):
    """tqdm for a log: a line per display where the count (or the words) moved, and the last
    one at close; nothing cleared, since nothing is drawn over."""

    def __init__(self, **options) -> None:
        self._said = None
        # leave=False: close adds no line of its own (it says the end in `close` below)
        super().__init__(file=sys.stderr, leave=False, mininterval=0, maxinterval=math.inf,
                         **options)  # fmt: skip

    def display(self, msg: str | None = None, pos: int | None = None) -> bool:
        moved = (self.n, self.total, self.desc)
        if msg is None and moved != self._said:
            self._said = moved
            self.fp.write(f"{self}\n")
            self.fp.flush()
        return False

    def clear(self, nolock: bool = False) -> None:
        pass

    def close(self) -> None:
        if not self.disable:
            self.display()
        super().close()


class _Stages:
    """The loading display: the stage in its own words, no bar and no percentage, since what a
    stage will take is not known ahead (a 70B model sat at a constant "90%" for minutes). In a
    log, a line where the words change; where only a count in them moves, one every LOG_COUNT_S
    at most."""

    def __init__(self, stage: str) -> None:
        if sys.stderr.isatty():  # leave=False until "ready": a load cut short (an error,
            # Ctrl-C) is not drawn again at exit, after the line that says why
            self.bar = tqdm(desc=stage, bar_format="loading: {desc}", leave=False, **_terminal())
        else:
            self.bar = _Log(desc=stage, bar_format="loading: {desc}")
        self.words, self.said_at = NUMBER.sub("#", stage), time.monotonic()

    def show(self, stage: str, last: bool) -> None:
        words, now = NUMBER.sub("#", stage), time.monotonic()
        log = isinstance(self.bar, _Log)
        if not log or last or words != self.words or now - self.said_at >= LOG_COUNT_S:
            self.words, self.said_at = words, now
            self.bar.set_description_str(stage)


_loading: _Stages | None = None


def show_progress(fraction: float, stage: str) -> None:
    """The loading model's `stage` ("stage 3 of 4: loading the weights, 120 of 272 tensors");
    `fraction` 1 (loaded, the stage "ready") ends the display. `fraction` is not shown."""
    global _loading
    done = fraction >= 1
    if _loading is None:
        if done:
            return  # nothing was loading: nothing to end
        _loading = _Stages(stage)
    _loading.show(stage, done)
    if done:
        if not isinstance(_loading.bar, _Log):
            _loading.bar.leave = True  # "loading: ready" stays on a terminal
        _loading.bar.close()
        _loading = None
