"""`neuroweb serve` and its clients, on loopback: the same frames as a local model, hostile and
malformed messages refused without a crash, a token beyond loopback, one answer at a time, and
a window and a kiosk that reconnect when the server is killed and comes back."""

import contextlib
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import msgpack
import numpy as np
import pytest
import zmq

from tests.test_cli import _assert_user_error, neuroweb, neuroweb_here
from visualizer import wire
from visualizer.clock import FixedStepClock
from visualizer.config import load_settings
from visualizer.gl.context import HeadlessTarget
from visualizer.render.app import App
from visualizer.sources.remote import RemoteSource
from visualizer.trace import read_trace

TOKEN = "a-shared-secret-of-some-length"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Served:
    """A `neuroweb serve` process: started, killed and started again on the same port."""

    def __init__(self, model: str, *extra: str) -> None:
        self.model, self.extra = model, extra
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None

    def start(self) -> "Served":
        args = ["--listen", self.address, *self.extra]
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "visualizer", "serve", "--model", self.model, *args],
            stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        for line in self.proc.stderr:  # bounded: the process ends, or says it serves
            if "serving" in line:
                return self
        raise AssertionError(f"the server did not start: {self.proc.wait()}")

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> str:
        """SIGTERM, as systemd stops it; its last words."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        rest = self.proc.stderr.read()
        assert self.proc.wait(20) in (0, -9), rest
        return rest


@pytest.fixture
def served(tiny_llama_dir):
    """A server of this test's own (killed, restarted, or counted)."""
    server = Served(str(tiny_llama_dir)).start()
    yield server
    server.stop()


def _trace(tmp_path: Path, name: str, *args: str) -> dict:
    out = tmp_path / name
    result = neuroweb_here("trace", "--prompt", "Tell me about lighthouses.", "--tokens", "12",
                           "--temperature", "0.8", "--seed", "7", "--out", str(out),
                           *args)  # fmt: skip
    assert result.returncode == 0, result.stderr
    return read_trace(out).arrays


def test_a_remote_trace_equals_a_local_one(shared_server, tiny_llama_dir, tmp_path):
    remote = _trace(tmp_path, "remote.npz", "--source", shared_server.address)
    local = _trace(tmp_path, "local.npz", "--model", str(tiny_llama_dir))
    assert remote.keys() == local.keys()
    for name in local:
        assert np.array_equal(remote[name], local[name]), name


@pytest.mark.slow
def test_smollm2_served_with_device_map_auto_gives_the_local_frames(smollm2_folder, tmp_path):
    """The real model, loaded by accelerate with device_map="auto" (this host has no GPU: all
    on the CPU), through the server, at full detail: the same frames as a local process."""
    server = Served("", "--device-map", "auto").start()
    try:
        settings = load_settings("default", {"model": {"source": server.address,
                                                       "detail": "full"},
                                             "generation": {"temperature": 0.0,
                                                            "max_tokens": 6}})  # fmt: skip
        remote = _answer(RemoteSource(settings))
    finally:
        server.stop()
    from visualizer.sources.local import LocalSource

    greedy = {"generation": {"temperature": 0.0, "max_tokens": 6}}
    local = _answer(LocalSource(load_settings("default", greedy)))
    assert [f.token_id for f in remote] == [f.token_id for f in local]
    for a, b in zip(remote, local, strict=True):
        for name in ("hidden", "mlp", "mlp_write", "attn", "attn_sink", "topk_probs"):
            assert np.allclose(getattr(a, name), getattr(b, name), rtol=1e-4, atol=1e-5), name


def _answer(source, prompt: str = "Name a colour.") -> list:
    """Every frame of one answer from `source` (started and stopped here)."""
    frames = []
    with source:
        request = None
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            batch = source.drain(timeout=0.5)
            assert batch.failure is None, batch.failure
            frames += batch.frames
            if request is None and batch.status.state == "ready":
                request = source.generate(prompt)
            if request and batch.status.request == request and batch.status.state == "finished":
                frames += source.drain(timeout=0.5).frames
                return frames
    raise AssertionError("no answer")


def _state(source, state: str, seconds: float = 60.0) -> None:
    """Drain `source` until its status is `state` (bounded)."""
    deadline = time.monotonic() + seconds
    while (seen := source.drain(0.2).status).state != state:
        assert time.monotonic() < deadline, f"not {state} in {seconds:g} s: {seen.state}"


def _raw_client(address: str) -> zmq.Socket:
    sock = zmq.Context.instance().socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(f"tcp://{address}")
    return sock


def _reply(sock: zmq.Socket):
    assert sock.poll(5000), "no reply"
    message, _ = wire.unpack(sock.recv_multipart(), wire.MAX_STATUS, wire.ServerMessage)
    return message


def _raw(header: dict) -> list[bytes]:
    """A header as any msgpack client writes it (ints where floats are meant, and all)."""
    return [msgpack.packb({"v": wire.WIRE_VERSION, **header})]


def test_hostile_messages_get_an_error_reply_and_break_nothing(served, tmp_path):
    sock = _raw_client(served.address)
    sock.send_multipart([msgpack.packb({"v": 99, "type": "hello"})])
    assert _reply(sock).code == "version"
    sock.send_multipart([b"\x92\x01"])  # a truncated msgpack array
    assert _reply(sock).code == "schema"
    sock.send_multipart(_raw({"type": "generate", "request": 1, "prompt": "x"}))
    assert _reply(sock).code == "schema"  # before hello
    hello = {"type": "hello", "detail": {"dtype": "float16", "attention": 8, "nodes": 4,
                                         "quantize": False}, "lossless": False, "credit": 0}
    sock.send_multipart(_raw(hello))
    assert isinstance(_reply(sock), wire.StatusMessage)
    for bad_gen in ({"max_tokens": 10**12}, {"temperature": "hot"}, {"eval": 1}):
        sock.send_multipart(_raw({"type": "generate", "request": 1, "prompt": "hi",
                                  "gen": bad_gen}))  # fmt: skip
        assert _reply(sock).code == "schema"
    sock.send_multipart([*_raw({"type": "ping"}), b"x" * 10**6])  # too big
    sock.close()
    # the server lives on and answers a well-formed client
    assert len(_trace(tmp_path, "after.npz", "--source", served.address)["token_ids"]) > 10
    assert "refused 6 messages" in served.stop()


def test_a_frame_claiming_a_gigabyte_is_refused():
    frame_header = {"type": "frame", "seq": 1, "request": 1, "index": 0, "token_id": 1,
                    "text": "x", "is_prompt": True, "context_start": 0, "topk_text": [],
                    "entropy": 0.0, "lens_text": [],
                    "arrays": [{"name": "hidden", "dtype": "<f4",
                                "shape": [1 << 24, 16]}]}  # fmt: skip
    parts = [*_raw(frame_header), b"\0" * 64]
    header, buffers = wire.unpack(parts, wire.MAX_STATUS, wire.ServerMessage)
    with pytest.raises(wire.WireError) as error:
        wire.frame_from(header, buffers)
    assert error.value.code == "size" and "1,073,741,824 bytes" in str(error.value)
    with pytest.raises(wire.WireError):  # and a whole message over the limit, before parsing
        wire.unpack([b"\x80", b"\0" * (wire.MAX_CLIENT_MESSAGE + 1)], wire.MAX_CLIENT_MESSAGE)


def test_a_client_with_a_hostile_server_says_so_and_carries_on():
    """A fake server that answers hello with a frame that lies about its size: the client
    reports a bad message once and stays up."""
    ctx = zmq.Context.instance()
    fake = ctx.socket(zmq.ROUTER)
    port = fake.bind_to_random_port("tcp://127.0.0.1")
    settings = load_settings("default", {"model": {"source": f"127.0.0.1:{port}"}})
    source = RemoteSource(settings).start()
    try:
        assert fake.poll(5000)
        client, *_ = fake.recv_multipart()
        spec = {"name": "hidden", "dtype": "<f4", "shape": [268435456]}  # 1 GB
        lie = [*_raw({"type": "frame", "seq": 1, "request": 0, "index": 0, "token_id": 1,
                      "text": "x", "is_prompt": True, "context_start": 0, "topk_text": [],
                      "entropy": 0.0, "lens_text": [], "arrays": [spec]}), b"\0" * 8]
        fake.send_multipart([client, *lie])
        deadline = time.monotonic() + 5
        while (batch := source.drain(0.2)).failure is None:
            assert time.monotonic() < deadline
        assert "sent a bad message" in batch.failure.message and source.alive
    finally:
        source.stop()
        fake.close(linger=0)


def test_a_token_asked_for_is_checked(tiny_llama_dir, tmp_path):
    """`--token-file` on top of loopback or keys: a client without it, or with another, is
    refused in one line and writes nothing; with it, it is served."""
    short = tmp_path / "short"
    short.write_text("abc")
    _assert_user_error(neuroweb("serve", "--listen", f"127.0.0.1:{free_port()}", "--token-file",
                                str(short)), "at least 16 characters")  # fmt: skip
    token = tmp_path / "token"
    token.write_text(TOKEN + "\n")
    wrong = tmp_path / "wrong"
    wrong.write_text("not-the-token-at-all")
    server = Served(str(tiny_llama_dir), "--token-file", str(token)).start()
    try:
        here = server.address
        refused = neuroweb("trace", "--source", here, "--token-file", str(wrong), "--prompt",
                           "hi", "--out", str(tmp_path / "x.npz"))  # fmt: skip
        _assert_user_error(refused, "refused the token")
        _assert_user_error(neuroweb("trace", "--source", here, "--prompt", "hi", "--out",
                                    str(tmp_path / "y.npz")), "refused the token")  # fmt: skip
        assert not (tmp_path / "x.npz").exists() and not (tmp_path / "y.npz").exists()
        assert len(_trace(tmp_path, "ok.npz", "--source", here, "--token-file", str(token))
                   ["token_ids"]) > 10  # fmt: skip
    finally:
        server.stop()


def test_one_answer_at_a_time_another_client_is_told_busy(shared_server):
    settings = load_settings("default", {"model": {"source": shared_server.address},
                                         "generation": {"max_tokens": 100_000}})  # fmt: skip
    first, second = RemoteSource(settings).start(), RemoteSource(settings).start()
    try:
        for source in (first, second):
            _state(source, "ready")
        first.generate("Count to a thousand.")
        _state(first, "generating")
        second.generate("Me too.")
        deadline = time.monotonic() + 10
        while (batch := second.drain(0.2)).failure is None:
            assert time.monotonic() < deadline
        assert batch.failure.user_error and "answering another client" in batch.failure.message
    finally:
        first.stop()
        second.stop()


def test_a_later_client_with_the_same_request_number_gets_its_own_answer(shared_server):
    """Each client numbers its requests from 1: the first client's "finished, request 1" must
    not reach the second as its own before its answer has begun (it then saw no frames)."""
    settings = load_settings("default", {"model": {"source": shared_server.address},
                                         "generation": {"temperature": 0.0,
                                                        "max_tokens": 5}})  # fmt: skip
    first = _answer(RemoteSource(settings))
    second = _answer(RemoteSource(settings))
    assert first  # the prompt's frames and the answer's
    assert [f.token_id for f in second] == [f.token_id for f in first]


def test_the_window_shows_reconnecting_and_resumes_when_the_server_comes_back(served):
    """The server is killed in the middle of an answer: the window draws on, says
    "reconnecting" over its scene, and when a new server is up on the same address the answer
    that was cut off ends as stopped and the next one streams."""
    settings = load_settings("default", {"model": {"source": served.address},
                                         "generation": {"max_tokens": 100_000}})  # fmt: skip
    target = HeadlessTarget((160, 90))
    source = RemoteSource(settings).start()
    app = App(settings, target, source, FixedStepClock(30), adaptive=False, prompt="Go on.")
    try:
        _frames_until(app, lambda: app.state == "generating" and app.tokens_seen > 20)
        served.kill()
        killed_at = time.monotonic()
        _frames_until(app, lambda: app.state == "reconnecting")
        assert time.monotonic() - killed_at < 2  # the loss is shown within 2 s
        seen = app.tokens_seen
        for _ in range(30):  # the window draws on, over the scene it had
            app.frame()
        assert app.overlay().state == "reconnecting" and app.tokens_seen == seen
        served.start()
        _frames_until(app, lambda: app.idle and app.state in ("stopped", "ready"))
        app.ask("Again.")
        before = app.tokens_seen
        _frames_until(app, lambda: app.tokens_seen > before + 3)
        assert source.reconnects >= 1
    finally:
        app.release()
        source.stop()
        target.close()


def _frames_until(app: App, done, seconds: float = 60.0) -> None:
    deadline = time.monotonic() + seconds
    while not done():
        assert time.monotonic() < deadline, f"not reached; {app.state}: {app.status.message}"
        app.frame()
        time.sleep(0.01)


@contextlib.contextmanager
def headless_kiosk(overrides: dict):
    """A kiosk (its App, source and log) on a small headless target; closed on the way out."""
    from visualizer.kiosk import Kiosk, kiosk_log, kiosk_source, looks_of
    from visualizer.render.controls import Controls

    settings = load_settings("kiosk", overrides)
    target = HeadlessTarget((160, 90))
    log = kiosk_log(settings.kiosk)
    source, attract = kiosk_source(settings, log)
    app = App(settings, target, source, FixedStepClock(30), adaptive=False,
              controls=Controls(frozenset()))  # fmt: skip
    kiosk = Kiosk(app, looks_of(settings), log, attract)
    try:
        yield kiosk
    finally:
        kiosk.close()
        app.release()
        source.stop()
        target.close()


def test_a_kiosk_heals_through_the_same_seam(served, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with headless_kiosk({
        "model": {"source": served.address},
        "kiosk": {"tokens": 6, "pause_s": 0.0, "log_file": str(tmp_path / "kiosk.log"),
                  "stall_s": 6.0, "attract_file": str(tmp_path / "attract.npz")},
    }) as kiosk:  # fmt: skip
        app = kiosk.app

        def tick() -> bool:
            kiosk.tick()
            return False

        _frames_until(app, lambda: tick() or kiosk.answers >= 2)
        served.kill()
        served.start()
        answers = kiosk.answers
        _frames_until(app, lambda: tick() or kiosk.answers >= answers + 2, seconds=90)
        assert app.running and app.intake.failure is None


def test_a_kiosk_refused_by_a_busy_server_says_so_once_and_goes_on_when_it_is_free(
        served, tmp_path, monkeypatch):  # fmt: skip
    """Another client holds the shared model (a lossless one that takes no frames yet): the
    kiosk's prompt is refused as busy, said once in its log however often it asks again, and
    its answers go on once the model is free, without a restart."""
    monkeypatch.chdir(tmp_path)
    busy = load_settings("default", {"model": {"source": served.address},
                                     "generation": {"max_tokens": 1000}})  # fmt: skip
    other = RemoteSource(busy, lossless=True).start()
    log_file = tmp_path / "kiosk.log"
    try:
        _state(other, "ready")
        other.generate("Count to a thousand.")
        _state(other, "generating")
        with headless_kiosk({
            "model": {"source": served.address},
            "kiosk": {"tokens": 6, "pause_s": 0.0, "log_file": str(log_file), "stall_s": 60.0,
                      "attract_file": str(tmp_path / "attract.npz")},
        }) as kiosk:  # fmt: skip
            app = kiosk.app

            def tick() -> bool:
                kiosk.tick()
                return False

            _frames_until(app, lambda: tick() or "prompt refused" in log_file.read_text())
            asked = kiosk.answers
            _frames_until(app, lambda: tick() or kiosk.answers >= asked + 2, seconds=12)
            other.stop()  # its bye frees the model
            _frames_until(app, lambda: tick() or app.tokens_seen > 0 and kiosk.answers
                          >= asked + 4, seconds=60)  # fmt: skip
            assert kiosk.restarts == 0 and app.running
    finally:
        other.stop()
    assert log_file.read_text().count("prompt refused") == 1
