"""The one progress display (visualizer/progress.py): in a log, lines without carriage returns,
a counted bar at each tenth and the loading stages once each; on a terminal, one line updated in
place; the loading display never a percentage."""

import io
import os
import pty
import re
import select
import subprocess
import sys

import pytest

from visualizer import progress
from visualizer.progress import counter, show_progress


class _Terminal(io.StringIO):
    """A terminal with no size (no file descriptor): the display must still draw."""

    def isatty(self) -> bool:
        return True


def test_a_log_gets_a_line_per_tenth_of_a_count_and_the_end(capsys):
    with counter("rendering", 95, "frames") as bar:
        for _ in range(95):
            bar.update()
    err = capsys.readouterr().err
    assert "\r" not in err
    counts = [int(re.fullmatch(r"rendering: (\d+)/95 frames \[.*frames/s\]", line)[1])
              for line in err.splitlines()]  # fmt: skip
    assert counts == [0, 10, 20, 30, 40, 50, 60, 70, 80, 90, 95]


def test_a_count_that_ends_early_is_said_where_it_ended(capsys):
    """An answer shorter than --tokens: its last line, once."""
    with counter("generating", 400, "tokens") as bar:
        bar.update(57)
        bar.total = bar.n
    assert capsys.readouterr().err.splitlines()[-1].startswith("generating: 57/57 tokens")


LOADING = [
    "starting the model process",
    "stage 1 of 4: finding the model",
    "stage 3 of 4: loading the weights",
    *(f"stage 3 of 4: loading the weights, {n:,} of 1,500 tensors" for n in range(0, 1501, 100)),
    "stage 4 of 4: reading its architecture (one small forward pass)",
]


@pytest.mark.parametrize("every_s", [progress.LOG_COUNT_S, 0.0])
def test_a_log_says_each_loading_stage_once_and_its_count_now_and_then(capsys, monkeypatch,
                                                                       every_s):  # fmt: skip
    monkeypatch.setattr(progress, "LOG_COUNT_S", every_s)
    for i, stage in enumerate(LOADING):
        show_progress(i / len(LOADING), stage)
    show_progress(1.0, "ready")
    show_progress(1.0, "ready")  # the ready state after the last loading status: no line
    err = capsys.readouterr().err
    assert "\r" not in err and "%" not in err
    lines = [line.removeprefix("loading: ") for line in err.splitlines()]
    counts = [line for line in LOADING if "tensors" in line]
    if every_s:  # the count's first line, and no more within LOG_COUNT_S
        assert lines == [*LOADING[:4], LOADING[-1], "ready"]
    else:
        assert lines == [*LOADING[:3], *counts, LOADING[-1], "ready"]


def test_a_terminal_gets_one_line_updated_in_place(monkeypatch):
    terminal = _Terminal()
    monkeypatch.setattr("sys.stderr", terminal)
    for stage in LOADING:
        show_progress(0.5, stage)
    show_progress(1.0, "ready")
    with counter("generating", 20, "tokens") as bar:
        for _ in range(20):
            bar.update()
    shown = terminal.getvalue()
    loading, generating, end = shown.split("\n")
    assert loading.split("\r")[-1] == "loading: ready" and "%" not in loading
    assert "\r" in generating and re.fullmatch(
        r"generating: 100%\|[^|]+\| 20/20 tokens \[.*tokens/s\]", generating.split("\r")[-1]
    )
    assert end == ""


def test_a_load_cut_short_on_a_terminal_is_not_drawn_again_after_the_error(tmp_path):
    """A model that fails to load: the line saying why is the terminal's last (tqdm drew the
    open loading line again at exit, under it)."""
    (tmp_path / "config.json").write_text("{}")  # found unusable as the model loads, not before
    (tmp_path / "model.safetensors").write_bytes(b"")  # (load.precheck: weights are there)
    main, other = pty.openpty()
    trace = ["trace", "--model", str(tmp_path), "--prompt", "hi", "--out", str(tmp_path / "t.npz")]
    run = subprocess.Popen([sys.executable, "-m", "visualizer", *trace], stdin=subprocess.DEVNULL,
                           stdout=subprocess.DEVNULL, stderr=other)  # fmt: skip
    os.close(other)
    shown = b""
    for _ in range(3000):  # what it draws, until it ends (bounded: 3000 × 0.1 s)
        if select.select([main], [], [], 0.1)[0]:
            try:
                shown += os.read(main, 65536)
            except OSError:  # Linux: the terminal's other end closed, all was read
                break
        elif run.poll() is not None:
            break
    os.close(main)
    run.wait(60)
    screen = re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "", shown.decode())  # less its cursor moves
    assert run.returncode == 2, screen
    # each line as it is left on screen: what its last carriage return began (the terminal
    # ends a line with \r\n)
    left = [line.rstrip("\r").split("\r")[-1].strip() for line in screen.split("\n")]
    left = [line for line in left if line]
    assert left[-1].startswith("neuroweb: ") and "config" in left[-1], screen
