"""The command line as a user runs it: bad input gives one line, exit 2, no traceback."""

import contextlib
import io
import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import transformers

from tests.tolerance import drift, eps
from visualizer.trace import FORMAT_VERSION, read_trace


def neuroweb(*args: str, timeout: float = 300, cwd=None, env=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "visualizer", *args], capture_output=True,
                          text=True, timeout=timeout, cwd=cwd, env=env)  # fmt: skip


def neuroweb_here(*args: str) -> subprocess.CompletedProcess:
    """`neuroweb ARGS` through the same `main` in this process, for a test of what a command
    makes or says (not of how its process starts or stops): its model process comes from this
    worker's forkserver, which imported torch and transformers once (5-6 s of CPU a call
    less than a fresh interpreter's). Its stdout and stderr are captured, its loggers write to
    that stderr, and the signal handlers it set are put back."""
    from visualizer import cli, logs, signals

    saved = {sig: signal.getsignal(sig) for sig in signals.HANDLED}
    out, err = io.StringIO(), io.StringIO()
    handler = logging.StreamHandler(err)
    handler.setFormatter(logging.Formatter(logs.CONSOLE_FORMAT))
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                status = cli.main(list(args))
            except SystemExit as exit_:  # argparse's refusals
                status = exit_.code
    finally:
        root.removeHandler(handler)
        for sig, handled in saved.items():
            signal.signal(sig, handled)
    return subprocess.CompletedProcess(args, status, out.getvalue(), err.getvalue())


def children(pid: int) -> list[int]:
    """The processes whose parent is `pid` (ffmpeg runs in a session of its own)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def interrupt_while_recording(
    partial: Path, *args: str, cwd=None, sig=signal.SIGINT, min_bytes: int = 1, group: bool = False
) -> tuple[int, str]:
    """Run neuroweb, send `sig` once ffmpeg has written `min_bytes` into `partial` (the
    recording's hidden file); its exit status and stderr. `group`: to the whole process group,
    as systemd stops a unit. SIGKILL goes to the group and to ffmpeg, as in a power cut."""
    run = subprocess.Popen([sys.executable, "-m", "visualizer", *args], cwd=cwd,
                           stderr=subprocess.PIPE, text=True, start_new_session=True)  # fmt: skip
    for _ in range(600):  # until ffmpeg has written something (bounded: 600 × 0.1 s)
        if partial.exists() and partial.stat().st_size >= min_bytes:
            break
        try:
            run.wait(0.1)
        except subprocess.TimeoutExpired:
            continue
    if sig == signal.SIGKILL:
        encoders = children(run.pid)
        os.killpg(run.pid, sig)
        for pid in encoders:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:  # went with the group
                pass
    elif group:
        os.killpg(run.pid, sig)
    else:
        run.send_signal(sig)
    _, stderr = run.communicate(timeout=60)
    return run.returncode, stderr


def _assert_user_error(result, needle: str) -> None:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("neuroweb:")]
    assert len(lines) == 1 and needle in lines[0], result.stderr


@pytest.fixture(scope="module")
def bert_dir(tmp_path_factory):
    config = transformers.BertConfig(
        vocab_size=100,
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
    )
    folder = tmp_path_factory.mktemp("bert")
    transformers.BertForMaskedLM(config).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def pickle_dir(tmp_path_factory, tiny_llama_dir):
    folder = tmp_path_factory.mktemp("pickled")
    model = transformers.AutoModelForCausalLM.from_pretrained(tiny_llama_dir)
    model.config.save_pretrained(folder)
    torch.save(model.state_dict(), folder / "pytorch_model.bin")
    for f in tiny_llama_dir.iterdir():
        if f.name.startswith(("tokenizer", "chat_template")):
            (folder / f.name).write_bytes(f.read_bytes())
    return folder


def test_missing_model_path(tmp_path):
    _assert_user_error(
        neuroweb(
            "trace", "--prompt", "hi", "--out", str(tmp_path / "a.npz"), "--model", "/no/such/dir"
        ),
        "no such folder",
    )


def test_folder_that_is_not_a_model(tmp_path):
    _assert_user_error(
        neuroweb(
            "trace", "--prompt", "hi", "--out", str(tmp_path / "a.npz"), "--model", str(tmp_path)
        ),
        "no config.json",
    )


def test_non_causal_model(tmp_path, bert_dir):
    _assert_user_error(
        neuroweb(
            "trace", "--prompt", "hi", "--out", str(tmp_path / "a.npz"), "--model", str(bert_dir)
        ),
        "not a causal",
    )


def test_pickle_is_refused_unless_trusted(tmp_path, pickle_dir):
    out = tmp_path / "a.npz"
    args = ("trace", "--prompt", "hi", "--tokens", "2", "--out", str(out), "--model",
            str(pickle_dir))  # fmt: skip
    _assert_user_error(neuroweb_here(*args), "--trust-pickle")
    assert not out.exists()
    trusted = neuroweb_here(*args, "--trust-pickle")
    assert trusted.returncode == 0, trusted.stderr
    assert out.exists()


@pytest.mark.parametrize("args,needle", [
    (("--prompt", ""), "empty"),
    (("--prompt", "hi", "--temperature", "-1"), "generation.temperature"),
    (("--prompt", "hi", "--tokens", "many"), "--tokens"),
    (("--prompt", "hi", "--preset", "/no/such.toml"), "no such preset"),
])  # fmt: skip
def test_bad_arguments(tmp_path, tiny_llama_dir, args, needle):
    _assert_user_error(
        neuroweb_here("trace", "--out", str(tmp_path / "a.npz"), "--model", str(tiny_llama_dir),
                      *args),  # fmt: skip
        needle,
    )


def test_unwritable_output(tmp_path, tiny_llama_dir):
    _assert_user_error(
        neuroweb_here(
            "trace",
            "--prompt",
            "hi",
            "--out",
            str(tmp_path / "no/a.npz"),
            "--model",
            str(tiny_llama_dir),
        ),
        "--out",
    )


def test_huge_and_strange_prompts_work(tmp_path, tiny_llama_dir):
    for prompt in ("lorem ipsum " * 5000, "🙂\x01\x07\x1b[2J🧠\u202e"):
        out = tmp_path / "odd.npz"
        result = neuroweb_here(
            "trace",
            "--prompt",
            prompt,
            "--tokens",
            "3",
            "--out",
            str(out),
            "--model",
            str(tiny_llama_dir),
        )
        assert result.returncode == 0, result.stderr
        assert len(read_trace(out)) > 3


@pytest.mark.slow
def test_trace_of_the_real_model(tmp_path):
    out = tmp_path / "run.npz"
    result = neuroweb(
        "trace",
        "--prompt",
        "Name a color.",
        "--tokens",
        "6",
        "--seed",
        "1",
        "--temperature",
        "0",
        "--out",
        str(out),
    )
    assert result.returncode == 0, result.stderr
    with np.load(out, allow_pickle=False) as data:
        meta = json.loads(str(data["meta"]))
        t = len(data["token_ids"])
        assert data["hidden"].shape == (t, 31, 576) and data["hidden"].dtype == np.float16
        assert data["mlp"].shape == (t, 30, 1536)
        assert data["mlp_write"].shape == (t, 30, 576) and data["experts"].shape == (t, 30, 0)
        assert t < 64 and data["attn"].shape == (t, 30, 9, 64)  # the default window
        assert data["attn_sink"].shape == (t, 30, 9)
        assert data["topk_ids"].shape == data["topk_probs"].shape == (t, 10)
        assert data["entropy"].shape == (t,)
        attn = data["attn"].astype(np.float32)
        # each weight rounded to float16 by at most eps/2 of itself (half a step below its
        # normal range), so a row of 64 by eps/2 of its float32 sum: 1 within the softmax's
        # float32 normaliser and the sum here
        half_steps = 64 * float(np.finfo(np.float16).smallest_subnormal) / 2
        atol = eps(np.float16) / 2 + half_steps + drift(np.float32, 2 * 64)
        np.testing.assert_allclose(attn.sum(-1), 1.0, rtol=0, atol=atol)
        for row in range(t):  # right-aligned: position `row` is the last column, 0 the sink
            assert not attn[row, :, :, : 64 - row - 1].any()
            np.testing.assert_array_equal(data["attn_sink"][row], data["attn"][row, :, :, 63 - row])
    assert meta["architecture"]["name"]["value"] == "SmolLM2-135M-Instruct"
    assert meta["format_version"] == FORMAT_VERSION
    assert meta["n_prompt"] == t - 6 and meta["prompt"] == "Name a color."
    assert meta["sampling"]["temperature"] == 0 and meta["model_config"]["num_hidden_layers"] == 30


def test_future_and_truncated_traces_are_refused(tmp_path, tiny_llama_dir):
    from visualizer.errors import UserError

    out = tmp_path / "t.npz"
    assert (
        neuroweb(
            "trace",
            "--prompt",
            "hi",
            "--tokens",
            "2",
            "--out",
            str(out),
            "--model",
            str(tiny_llama_dir),
        ).returncode
        == 0
    )
    data = dict(np.load(out, allow_pickle=False))
    meta = json.loads(str(data.pop("meta")))
    np.savez(tmp_path / "future.npz", meta=json.dumps({**meta, "format_version": 99}), **data)
    with pytest.raises(UserError, match="version 99"):
        read_trace(tmp_path / "future.npz")
    (tmp_path / "cut.npz").write_bytes(out.read_bytes()[: out.stat().st_size // 2])
    with pytest.raises(UserError, match="not a readable trace"):
        read_trace(tmp_path / "cut.npz")


def test_run_streams_an_answer_to_the_terminal(tiny_llama_dir):
    result = neuroweb(
        "run",
        "--terminal",
        "--prompt",
        "Hello",
        "--tokens",
        "5",
        "--temperature",
        "0",
        "--model",
        str(tiny_llama_dir),
        "--threads",
        "1",
    )
    assert result.returncode == 0, result.stderr
    assert "ready" in result.stderr and len(result.stdout) > 1  # pieces of the answer, then \n


def test_run_reports_a_missing_model_in_one_line(tmp_path):
    """Without a display (where `run` would make a demo clip): the missing model is said at
    once, before a model process or a clip is started (load.precheck), and nothing is left."""
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    start = time.monotonic()
    result = neuroweb("run", "--prompt", "hi", "--model", "/no/such/dir", cwd=tmp_path, env=env)
    _assert_user_error(result, "no such folder")
    assert time.monotonic() - start < 5  # a model process imports torch: 5-20 s here
    assert list(tmp_path.iterdir()) == []  # the demo clip that could not be made left nothing
