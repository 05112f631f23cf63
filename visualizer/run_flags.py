"""`neuroweb run`'s flags that only go together: --frames, --size and --screenshot need
--headless, and a talk's cue list (--cues) needs the window, where its clicker's keys are. Kept
here, beside the command line (cli.py), which holds what the commands share."""

import argparse
from pathlib import Path

from visualizer.cues import Show, load_cues
from visualizer.errors import UserError


def add_cues_flag(run: argparse.ArgumentParser) -> None:
    run.add_argument("--cues", type=Path, metavar="TALK.toml",
                     help="a talk's cue list: PageDown / PageUp step it (docs/cues.md)")


def checked(args: argparse.Namespace) -> Show | None:
    """The cue list to show, if any, once the flags are known to go together (UserError
    otherwise, or for a bad cue file)."""
    for flag in ("frames", "size", "screenshot"):
        if not args.headless and getattr(args, flag) is not None:
            raise UserError(f"run: --{flag} needs --headless")
    if args.cues is None:
        return None
    if args.headless or args.terminal:
        raise UserError("run: --cues needs the window (not --headless or --terminal)")
    return load_cues(args.cues)
