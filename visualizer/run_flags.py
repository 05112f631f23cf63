"""`neuroweb run`'s flags that only go together: --frames, --size and --screenshot need
--headless, and a talk's cue list (--cues) and a remote (--osc) need the window, where the
clicker's keys are; and `render`'s output, a video (--out) or a picture with alpha (--alpha);
where the operator's chrome is drawn (--clean, --chrome: docs/recording.md). Kept here, beside
the command line (cli.py), which holds what the commands share."""

import argparse
import os
from pathlib import Path

from visualizer.cues import Show, load_cues
from visualizer.errors import UserError
from visualizer.network import parse_address, udp_socket
from visualizer.paths import check_output

OSC_HOST = "127.0.0.1"  # a remote listens on this machine only, unless a host is given
CHROME_HELP = ("record the operator's chrome too (REC, the prompt box, the HUD, notices), as a "
               "screen capture would; recordings are clean without it")  # fmt: skip


def add_show_flags(run: argparse.ArgumentParser) -> None:
    run.add_argument("--cues", type=Path, metavar="TALK.toml",
                     help="a talk's cue list: PageDown / PageUp step it (docs/cues.md)")
    run.add_argument("--osc", type=osc_address, metavar="[HOST:]PORT",
                     help="take OSC messages (/neuroweb/next, /neuroweb/scene …) on this UDP "
                     f"port, from {OSC_HOST} unless a host is given (docs/cues.md)")  # fmt: skip
    run.add_argument("--stream", metavar="udp://HOST:PORT", help="the window live as MPEG-TS "
                     "with its sound, for OBS (a media source) or ffmpeg; srt:// too")
    run.add_argument("--audio-device", action=_AudioDevice, metavar="NAME|list",
                     help="play the sound on this output (`list`: print their names)")
    run.add_argument("--operator", action="store_true", default=None,
                     help="the operator's window beside the clean picture: cues, the note, a "
                     "timer, tok/s, REC, warnings, the hall's picture small (docs/cues.md)")
    run.add_argument("--display", type=int, metavar="N",
                     help="open the window on screen N (the projector's), from 0")
    run.add_argument("--watch", action="store_true", default=None,
                     help="with --source: a viewer of that server's answers, whoever asks them "
                     "(the projector beside the operator's window); it asks for none")  # fmt: skip


class _AudioDevice(argparse.Action):
    """--audio-device NAME, one of the outputs there are; `list` prints their names and ends
    the command, as --help does."""

    def __call__(self, parser, namespace, value, option_string=None) -> None:
        from visualizer.sound.speakers import output_devices

        devices = output_devices()
        if value == "list":
            print("\n".join(devices) if devices else "no sound output opens here")
            parser.exit()
        if value not in devices:
            there = "; ".join(devices) or "none opens here"
            parser.error(f"--audio-device {value}: no such sound output (there are: {there})")
        setattr(namespace, self.dest, value)


def add_picture_flags(run: argparse.ArgumentParser) -> None:
    picture = run.add_mutually_exclusive_group()
    picture.add_argument("--clean", action="store_true",
                         help="the audience's picture: the scene and the answer only, no REC, "
                         "prompt box, HUD or notices (those go to the terminal); keys still "
                         "work")  # fmt: skip
    picture.add_argument("--chrome", action="store_true", help=CHROME_HELP)


def chrome_shown(args: argparse.Namespace, window: bool, operator: bool) -> str:
    """Where the operator's chrome is drawn (render/app.ChromeShown): on a `window` only, by
    default; nowhere with --clean, with an `operator`'s window, or headless; in the recordings
    too with --chrome."""
    if args.chrome:
        return "recorded"
    return "window" if window and not (args.clean or operator) else "none"


def add_output_flags(render: argparse.ArgumentParser) -> None:
    out = render.add_mutually_exclusive_group(required=True)
    out.add_argument("--out", type=Path, help="the .mp4 to write")
    out.add_argument("--alpha", metavar="OUT.mov|FOLDER/",
                     help="the picture without its background, with alpha, for editors: ProRes "
                     "4444 for a .mov, a folder of PNGs for a name ending in / "
                     "(docs/recording.md)")  # fmt: skip
    render.add_argument("--chrome", action="store_true", help=CHROME_HELP)


def render_output(args: argparse.Namespace) -> tuple[Path, bool]:
    """Where `render` writes, and whether with alpha; checked before the model's work."""
    if args.out is not None:
        return check_output(args.out), False
    text = args.alpha
    if not (text.endswith(("/", os.sep)) or Path(text).suffix.lower() == ".mov"):
        raise UserError(f"render: --alpha {text}: expected a .mov (ProRes 4444) or a folder "
                        "for PNGs, written with a / at its end")  # fmt: skip
    return check_output(Path(text), alpha=True), True


def osc_address(text: str) -> tuple[str, int]:
    """"PORT" (on loopback) or "HOST:PORT" → (host, port); UserError if it is neither."""
    try:
        return parse_address(text if ":" in text else f"{OSC_HOST}:{text}", "--osc")
    except UserError:
        raise UserError(f"--osc {text}: expected PORT or HOST:PORT (a port 1–65535)") from None


def checked(args: argparse.Namespace) -> Show | None:
    """The cue list to show, if any, once the flags are known to go together (UserError
    otherwise, for a bad cue file, an OSC port that cannot be listened on, or a file that
    cannot be written: found before the model loads)."""
    for flag in ("frames", "size", "screenshot"):
        if not args.headless and getattr(args, flag) is not None:
            raise UserError(f"run: --{flag} needs --headless")
    for flag in ("cues", "osc", "operator", "display"):
        if getattr(args, flag) is not None and (args.headless or args.terminal):
            raise UserError(f"run: --{flag} needs the window (not --headless or --terminal)")
    if args.stream is not None:
        from visualizer.record.stream import stream_url

        stream_url(args.stream)
        if args.terminal:
            raise UserError("run: --stream needs the window or --headless, not --terminal")
    if args.watch and not args.source:
        raise UserError("run: --watch needs --source HOST:PORT (a server to watch)")
    if args.watch and args.prompt is not None:
        raise UserError("run: --watch asks for no answers: leave out --prompt")
    if args.display is not None and not 0 <= args.display < 64:
        raise UserError(f"run: --display {args.display}: a screen's number, 0 to 63")
    if args.osc is not None:
        udp_socket(*args.osc, "--osc").close()  # the window listens there once it is open
    for path in (args.record, args.screenshot):  # said at once, not after the model loaded
        if path is not None:
            check_output(path)
    return None if args.cues is None else load_cues(args.cues)
