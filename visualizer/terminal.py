"""`neuroweb run` in a terminal: the stream's text as it is generated (the window replaces this)."""

import sys

from visualizer.config import Settings
from visualizer.errors import UserError
from visualizer.progress import show_progress
from visualizer.sources import FrameSource, check, open_source

DEAD_PRODUCER_S = 30.0  # drain's wait; a dead model process arrives as a failure before this


def wait_ready(source: FrameSource) -> None:
    while True:
        batch = source.drain(timeout=DEAD_PRODUCER_S)
        check(batch)
        if batch.status.state == "ready":
            show_progress(1.0, "ready")
            return
        if batch.status.state == "loading":
            show_progress(batch.status.progress, batch.status.message)


def print_answer(source: FrameSource, prompt: str) -> None:
    """Generate and print the answer's text as frames arrive; returns when it is finished."""
    request = source.generate(prompt)
    while True:
        batch = source.drain(timeout=DEAD_PRODUCER_S)
        check(batch)
        for frame in batch.frames:
            if not frame.is_prompt:
                print(frame.text, end="", flush=True)
        status = batch.status
        if status.request == request and status.state in ("finished", "stopped"):
            print()
            return


def run_terminal(settings: Settings, prompt: str | None) -> int:
    with open_source(settings) as source:
        wait_ready(source)
        if prompt is not None:
            print_answer(source, prompt)
            return 0
        print("type a prompt and press Enter (Ctrl-D to quit)", file=sys.stderr)
        for line in sys.stdin:
            if line.strip():
                try:
                    print_answer(source, line.rstrip("\n"))
                except UserError as exc:
                    print(f"neuroweb: {exc}", file=sys.stderr)
    return 0
