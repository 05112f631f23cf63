"""The model stream: a real model process, the receiver thread, the handoff, stop and errors."""

import os
import time

import pytest

from visualizer.config import Settings, load_settings
from visualizer.errors import UserError
from visualizer.sources.local import LocalSource


def _settings(model: str, **gen) -> Settings:
    return load_settings(None, {"model": {"name": model, "threads": 1}, "generation": gen})


def _until(stream, predicate, timeout=60.0):
    """Drain until `predicate(batch, frames_so_far)`; returns all frames seen."""
    frames, end = [], time.monotonic() + timeout
    while time.monotonic() < end:
        batch = stream.drain(timeout=1.0)
        frames.extend(batch.frames)
        if predicate(batch, frames):
            return frames, batch
    raise AssertionError("stream timed out")


def _stop_is_quick(stream):
    t = time.perf_counter()
    stream.stop()
    elapsed = time.perf_counter() - t
    assert elapsed < 1.0, elapsed
    assert not stream.alive


def test_frames_flow_and_two_answers_in_a_row(tiny_llama_dir):
    with LocalSource(_settings(str(tiny_llama_dir), max_tokens=5, temperature=0)) as stream:
        _until(stream, lambda b, f: b.status.state == "ready")
        done = lambda r: lambda b, f: b.status.request == r and b.status.state == "finished"  # noqa: E731
        first, _ = _until(stream, done(stream.generate("Hello")))
        second, _ = _until(stream, done(stream.generate("Hello")))
        _stop_is_quick(stream)
    assert [f.token_id for f in first] == [f.token_id for f in second]
    assert sum(not f.is_prompt for f in first) == 5
    assert first[-1].hidden.shape == (4, 32)


def test_stop_while_generating_is_within_a_second(tiny_llama_dir):
    stream = LocalSource(_settings(str(tiny_llama_dir), max_tokens=100_000, temperature=1.0))
    stream.start()
    _until(stream, lambda b, f: b.status.state == "ready")
    stream.generate("Tell me a long story")
    _until(stream, lambda b, f: len(f) > 40)
    _stop_is_quick(stream)


def test_stop_while_loading_is_within_a_second(tiny_llama_dir):
    stream = LocalSource(_settings(str(tiny_llama_dir))).start()
    _until(stream, lambda b, f: b.status.state == "loading")
    _stop_is_quick(stream)


def test_an_abandoned_stream_ends_without_being_waited_for(tiny_llama_dir):
    """What a kiosk does to a failed or stuck model: kill it and go on; the process dies, its
    receiver thread ends, and the next stream started reaps it (no zombie is left)."""
    stream = LocalSource(_settings(str(tiny_llama_dir), max_tokens=100_000)).start()
    _until(stream, lambda b, f: b.status.state == "ready")
    stream.generate("Go on and on")
    _until(stream, lambda b, f: len(f) > 5)
    pid = stream.pid
    stream.abandon()
    stream._receiver.join(timeout=10)
    assert not stream._receiver.is_alive() and not stream.alive
    with LocalSource(_settings(str(tiny_llama_dir))):  # starting a process reaps the dead
        assert not os.path.exists(f"/proc/{pid}")  # gone: not even a zombie


def test_cancel_keeps_the_model_ready(tiny_llama_dir):
    with LocalSource(_settings(str(tiny_llama_dir), max_tokens=100_000)) as stream:
        _until(stream, lambda b, f: b.status.state == "ready")
        stream.generate("Go on and on")
        _until(stream, lambda b, f: len(f) > 20)
        stream.cancel()
        _until(stream, lambda b, f: b.status.state == "stopped")
        stream.generate("Again")
        frames, _ = _until(stream, lambda b, f: len(f) > 5)
        assert frames[0].index == 0


def test_a_slow_consumer_gets_a_drop_count(tiny_llama_dir):

    settings = _settings(str(tiny_llama_dir), max_tokens=60)
    with LocalSource(settings, capacity=4) as stream:
        _until(stream, lambda b, f: b.status.state == "ready")
        stream.generate("Hi")
        deadline = time.monotonic() + 60
        while stream.drain().status.state != "generating":
            assert time.monotonic() < deadline
            time.sleep(0.01)
        time.sleep(3.0)  # a consumer that stalls for three seconds
        batch = stream.drain()
        assert len(batch.frames) == 4 and batch.dropped > 0


def test_errors_in_the_model_process_reach_the_consumer(tmp_path):
    """A model the process finds it cannot use (a config that is not a causal language model)
    arrives as a failure the consumer can show; what can be refused without the process (a
    path that is not there, a folder without config.json) is refused at once, before one is
    started (load.precheck)."""
    import transformers

    bert = tmp_path / "bert"
    config = transformers.BertConfig(vocab_size=100, hidden_size=16, num_hidden_layers=1,
                                     num_attention_heads=2, intermediate_size=32)  # fmt: skip
    transformers.BertForMaskedLM(config).save_pretrained(bert)
    with LocalSource(_settings(str(bert))) as stream:
        _, batch = _until(stream, lambda b, f: b.failure is not None)
    assert batch.failure.user_error and "not a causal" in batch.failure.message
    for model, needle in (("/no/such/model", "no such folder"), (str(tmp_path), "no config")):
        with pytest.raises(UserError, match=needle):
            LocalSource(_settings(model))


def test_a_bad_prompt_is_reported_and_the_model_stays_ready(tiny_llama_dir):
    with LocalSource(_settings(str(tiny_llama_dir), max_tokens=3)) as stream:
        _until(stream, lambda b, f: b.status.state == "ready")
        stream.generate("   ")
        _, batch = _until(stream, lambda b, f: b.failure is not None)
        assert "empty" in batch.failure.message
        assert stream.alive


def test_a_whole_frame_of_the_embedded_model_fits_in_the_frames_pipe(smollm2, tiny_llama_dir):
    """The receiver thread needs the GIL after every read of the pipe, and a render loop lets
    go of it once per switch interval: a frame that took several reads kept the model waiting
    in `send` (local._make_room)."""
    import fcntl
    from multiprocessing.reduction import ForkingPickler

    from visualizer.config import CaptureSettings, GenerationSettings
    from visualizer.model.generate import generate_frames

    gen = GenerationSettings(max_tokens=2, temperature=0.0)
    frames = list(generate_frames(smollm2, "Hello", gen, CaptureSettings()))
    largest = max(len(ForkingPickler.dumps(("frame", f))) for f in frames if not f.is_prompt)
    assert largest > 64 * 1024  # more than a default pipe holds
    with LocalSource(_settings(str(tiny_llama_dir))) as stream:
        room = fcntl.fcntl(stream._frames.fileno(), fcntl.F_GETPIPE_SZ)
    assert room >= largest, (room, largest)


def test_an_answer_ends_with_its_last_frames(tiny_llama_dir, monkeypatch):
    """`trace` takes an answer's frames until the status that ends it, and first waits for the
    model to be ready. It waited a whole drain (WAIT_S, 30 s) where nothing more was coming:
    when the last frames and the end came in one batch (about half of the answers here), and
    before each answer after the first on one model (its "finished" was no news). Each of
    eight answers on one model now ends at once."""
    from visualizer import tracer

    monkeypatch.setattr(tracer, "WAIT_S", 20.0)
    settings = _settings(str(tiny_llama_dir), max_tokens=3)
    with LocalSource(settings, lossless=True) as source:
        tracer.answer(source, settings, "Hi")  # the model loaded
        for _ in range(8):
            start = time.monotonic()
            builder, _ = tracer.answer(source, settings, "Hi")
            assert builder.rows > 3 and time.monotonic() - start < 10
