"""`neuroweb run` in a terminal: the stream's text as it is generated (the window replaces this)."""

import sys

from visualizer.config import Settings
from visualizer.errors import UserError
from visualizer.handoff import Batch
from visualizer.model.stream import ModelStream

DEAD_PRODUCER_S = 30.0  # drain's wait; a dead model process arrives as a failure before this


def show_progress(fraction: float, stage: str) -> None:
    """One updating line on a terminal; one line per stage in a log."""
    line = f"loading {fraction:4.0%}  {stage}"
    if sys.stderr.isatty():
        print(f"\r\033[K{line}", end="" if fraction < 1 else "\n", file=sys.stderr, flush=True)
    else:
        print(line, file=sys.stderr, flush=True)


def _check(batch: Batch) -> None:
    if batch.failure is not None:
        if batch.failure.user_error:
            raise UserError(batch.failure.message)
        raise RuntimeError(batch.failure.message)


def wait_ready(stream: ModelStream) -> None:
    while True:
        batch = stream.handoff.drain(timeout=DEAD_PRODUCER_S)
        _check(batch)
        if batch.status.state == "ready":
            return
        if batch.status.state == "loading":
            show_progress(batch.status.progress, batch.status.message)


def print_answer(stream: ModelStream, prompt: str) -> None:
    """Generate and print the answer's text as frames arrive; returns when it is finished."""
    request = stream.generate(prompt)
    while True:
        batch = stream.handoff.drain(timeout=DEAD_PRODUCER_S)
        _check(batch)
        for frame in batch.frames:
            if not frame.is_prompt:
                print(frame.text, end="", flush=True)
        status = batch.status
        if status.request == request and status.state in ("finished", "stopped"):
            print()
            return


def run_terminal(settings: Settings, prompt: str | None) -> int:
    with ModelStream(settings) as stream:
        wait_ready(stream)
        if prompt is not None:
            print_answer(stream, prompt)
            return 0
        print("type a prompt and press Enter (Ctrl-D to quit)", file=sys.stderr)
        for line in sys.stdin:
            if line.strip():
                try:
                    print_answer(stream, line.rstrip("\n"))
                except UserError as exc:
                    print(f"neuroweb: {exc}", file=sys.stderr)
    return 0
