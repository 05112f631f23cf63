"""Progress on stderr, for a model that loads: apart from any one front end, so that the terminal
UI and `neuroweb trace` show it alike."""

import sys


def show_progress(fraction: float, stage: str) -> None:
    """One updating line on a terminal; one line per stage in a log."""
    line = f"loading: {stage}"  # its stage and number, what is counted of it; no percentage
    if sys.stderr.isatty():
        print(f"\r\033[K{line}", end="" if fraction < 1 else "\n", file=sys.stderr, flush=True)
    else:
        print(line, file=sys.stderr, flush=True)
