"""`neuroweb serve` against what knocked it over before: every poisonous request gets a refusal
or a failure and the next ordinary request is answered; a request whose forward pass raises is
that request's failure; a model that cannot go on ends the server with a non-zero status;
clients say a lost server within 2 s; CURVE leaves nothing readable on the wire."""

import math
import socket
import threading
import time

import msgpack
import pytest
import zmq

from tests.test_cli import neuroweb
from tests.test_server import Served, _raw, _raw_client, free_port
from visualizer import wire
from visualizer.config import load_settings
from visualizer.server import Server

ORDINARY = {"type": "generate", "prompt": "Say hello.", "gen": {"max_tokens": 3,
                                                                "temperature": 0}}
CAP = 6  # the test server's [serve] max_tokens

# (what, the request's header, what the client must get: "answer", "schema" or "failure")
POISON = [
    ("temperature as an int", {"gen": {"temperature": 1, "max_tokens": 2}}, "answer"),
    ("temperature 1e-40", {"gen": {"temperature": 1e-40}}, "schema"),
    ("temperature inf", {"gen": {"temperature": math.inf}}, "schema"),
    ("top_p NaN", {"gen": {"top_p": math.nan}}, "schema"),
    ("context 3", {"gen": {"context": 3}}, "schema"),
    ("max_tokens 10^6 (capped)", {"gen": {"max_tokens": 10**6, "temperature": 0}}, "answer"),
    ("steering scale inf", {"interventions": {"steer": ["1:inf:a|b"]}}, "schema"),
    ("steering scale 1e39", {"interventions": {"steer": ["1:1e39:a|b"]}}, "schema"),
    ("ablating block 999", {"interventions": {"ablate": ["mlp:999"]}}, "failure"),
    ("a 70k-character prompt", {"prompt": "x" * 70_000}, "schema"),
    ("a 300 kB message", {"prompt": "x" * 300_000}, "size"),
    ("a bool for max_tokens", {"gen": {"max_tokens": True}}, "schema"),
    ("an unknown setting", {"gen": {"eval": "1"}}, "schema"),
    ("a negative request", {"request": -1}, "schema"),
]


def _until(sock: zmq.Socket, done, seconds: float = 30.0) -> list:
    """Messages from the server until `done(message)` is true; bounded by `seconds`."""
    seen, deadline = [], time.monotonic() + seconds
    while time.monotonic() < deadline:
        if sock.poll(200):
            message, _ = wire.unpack(sock.recv_multipart(), wire.MAX_STATUS, wire.ServerMessage)
            seen.append(message)
            if done(message):
                return seen
    raise AssertionError(f"not seen in {seconds} s: {[type(m).__name__ for m in seen[-5:]]}")


def _answered(sock: zmq.Socket, request: int) -> list:
    """The frames of `request`, until its status says finished."""
    seen = _until(sock, lambda m: isinstance(m, wire.StatusMessage) and m.status.request == request
                  and m.status.state == "finished")  # fmt: skip
    return [m for m in seen if isinstance(m, wire.FrameMessage) and m.request == request]


def _hello(sock: zmq.Socket) -> None:
    sock.send_multipart(_raw({"type": "hello", "detail": {"dtype": "float16", "attention": 8,
                                                          "nodes": 4}}))  # fmt: skip
    _until(sock, lambda m: isinstance(m, wire.StatusMessage) and m.status.state == "ready")


@pytest.fixture
def capped(tiny_llama_dir, tmp_path):
    preset = tmp_path / "serve.toml"
    preset.write_text(f"[serve]\nmax_tokens = {CAP}\n")
    server = Served(str(tiny_llama_dir), "--preset", str(preset)).start()
    yield server
    server.stop()


def test_every_poisonous_request_is_refused_or_failed_and_the_next_is_answered(capped):
    sock = _raw_client(capped.address)
    _hello(sock)
    request, table = 0, []
    for what, change, expected in POISON:
        request += 1
        header = {**ORDINARY, "request": request, **change}
        sock.send_multipart(_raw(header))
        if expected == "size":  # over the server's message limit: ZeroMQ drops it unread
            got = "dropped"
        else:
            seen = _until(sock, lambda m, r=request: (
                isinstance(m, wire.ErrorMessage | wire.FailureMessage)
                or isinstance(m, wire.StatusMessage) and m.status.request == r
                and m.status.state == "finished"))  # fmt: skip
            last = seen[-1]
            got = (last.code if isinstance(last, wire.ErrorMessage)
                   else "failure" if isinstance(last, wire.FailureMessage) else "answer")
            frames = [m for m in seen if isinstance(m, wire.FrameMessage) and not m.is_prompt]
            if got == "answer":
                assert len(frames) <= CAP, what  # the server's cap, not the 10^6 asked
            said = getattr(last, "message", "")
            table.append((what, got, said))
        assert got == {"size": "dropped"}.get(expected, expected), (what, got, seen)
        if expected == "size":  # the server dropped that client's connection: a new one
            sock.close()
            sock = _raw_client(capped.address)
            _hello(sock)
        request += 1
        sock.send_multipart(_raw({**ORDINARY, "request": request}))
        assert _answered(sock, request), f"no answer after {what}"
    sock.close()
    for what, got, said in table:  # the closing note's table (pytest -s shows it)
        print(f"{what:28} → {got:8} {said[:70]}")
    refusals = {said for _, got, said in table if got == "schema"}
    assert any("gen.temperature" in s for s in refusals)  # the field is named
    assert any("gen.context" in s for s in refusals)
    assert any("scale" in s for s in refusals)


def _in_process(tiny_llama_dir) -> tuple[Server, threading.Thread, str]:
    settings = load_settings("default", {"model": {"name": str(tiny_llama_dir), "threads": 1}})
    port = free_port()
    server = Server(settings, "127.0.0.1", port, None, None, "float32")
    thread = threading.Thread(target=server.run, name="test-serve")
    thread.start()
    return server, thread, f"127.0.0.1:{port}"


def test_a_request_that_raises_is_its_failure_and_a_dead_model_ends_the_server(tiny_llama_dir):
    """A forward pass that raises once: that request's failure, the next is answered, status
    0 on a stop. A model whose every pass raises (its weights gone): the server ends, 1."""
    server, thread, address = _in_process(tiny_llama_dir)
    sock = _raw_client(address)
    try:
        _hello(sock)
        layer = server.model.lm.model.model.layers[0]
        raised = []

        def once(module, args):
            if not raised:
                raised.append(True)
                raise RuntimeError("a fault in block 0")

        hook = layer.register_forward_pre_hook(once)
        sock.send_multipart(_raw({**ORDINARY, "request": 1}))
        failure = _until(sock, lambda m: isinstance(m, wire.FailureMessage))[-1]
        assert not failure.user_error and "a fault in block 0" in failure.message
        assert failure.request == 1
        sock.send_multipart(_raw({**ORDINARY, "request": 2}))
        assert _answered(sock, 2)
        assert thread.is_alive() and server.exit_status == 0
        hook.remove()

        def always(module, args):
            raise RuntimeError("weights gone")

        server.model.lm.model.model.embed_tokens.register_forward_pre_hook(always)
        sock.send_multipart(_raw({**ORDINARY, "request": 3}))
        last = _until(sock, lambda m: isinstance(m, wire.FailureMessage))[-1]
        assert "weights gone" in last.message
        thread.join(30)
        assert not thread.is_alive()
        assert server.exit_status == 1 and "cannot go on" in server.model.gone
    finally:
        sock.close()
        server.stop()
        thread.join(30)


def test_a_client_says_a_server_is_not_there_within_2_s(caplog):
    """The seam every client shares (window, kiosk, trace, render): its status and one log
    line, within 2 s of starting to look."""
    from visualizer.sources.remote import RemoteSource

    settings = load_settings("default", {"model": {"source": f"127.0.0.1:{free_port()}"}})
    began = time.monotonic()
    with caplog.at_level("WARNING", logger="neuroweb.remote"), RemoteSource(settings) as source:
        while source.drain(0.05).status.state != "reconnecting":
            assert time.monotonic() - began < 2.0
        assert time.monotonic() - began < 2.0
        assert "reconnecting (" in source.drain(0).status.message
        time.sleep(3.5)  # two more tries (after 1 s, then 2 s): the same state, no new line
    lines = [r.getMessage() for r in caplog.records if r.name == "neuroweb.remote"]
    assert len(lines) == 1 and "no answer" in lines[0], lines


def test_a_trace_at_no_server_says_so_once_and_gives_up_with_exit_1(tmp_path):
    from visualizer.tracer import GIVE_UP_S

    proc = neuroweb_popen("trace", "--source", f"127.0.0.1:{free_port()}", "--prompt", "hi",
                          "--out", str(tmp_path / "t.npz"))  # fmt: skip
    first = proc.stderr.readline()
    rest = proc.stderr.read()
    assert proc.wait(GIVE_UP_S + 30) == 1, rest
    assert first.startswith("neuroweb: the server at") and "no answer" in first
    lines = [line for line in rest.splitlines() if line.startswith("neuroweb:")]
    assert len(lines) == 1 and "gave up" in lines[0] and "Traceback" not in rest  # tried
    #                                                  4 times, said once
    assert not (tmp_path / "t.npz").exists()


def neuroweb_popen(*args: str):
    import subprocess
    import sys

    return subprocess.Popen([sys.executable, "-m", "visualizer", *args], text=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # fmt: skip


class _Recorder:
    """A TCP relay on loopback that keeps every byte passing each way."""

    def __init__(self, target: int) -> None:
        self.target, self.bytes = target, bytearray()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.listener.settimeout(0.2)
        self.stopping = threading.Event()
        self.threads = [threading.Thread(target=self._accept)]
        self.threads[0].start()

    def _accept(self) -> None:
        while not self.stopping.is_set():
            try:
                client, _ = self.listener.accept()
            except TimeoutError:
                continue
            server = socket.create_connection(("127.0.0.1", self.target))
            for a, b in ((client, server), (server, client)):
                thread = threading.Thread(target=self._pump, args=(a, b))
                thread.start()
                self.threads.append(thread)

    def _pump(self, a: socket.socket, b: socket.socket) -> None:
        a.settimeout(0.2)
        while not self.stopping.is_set():
            try:
                data = a.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                break
            if not data:
                break
            self.bytes += data
            try:
                b.sendall(data)
            except OSError:
                break
        for s in (a, b):
            s.close()

    def close(self) -> None:
        self.stopping.set()
        for thread in self.threads:
            thread.join(5)
        self.listener.close()


PROMPT = "Tell me about lighthouses at midnight."


@pytest.mark.parametrize("curve", [False, True])
def test_with_curve_nothing_readable_crosses_the_wire(tiny_llama_dir, tmp_path, curve):
    """The prompt and the answer's tokens through a recording relay: in clear text without
    keys (so the recorder can see them), and nowhere in the bytes with CURVE on."""
    keys = tmp_path / "keys"
    extra = ("--keys", str(keys)) if curve else ()
    server = Served(str(tiny_llama_dir), *extra).start()
    relay = _Recorder(server.port)
    try:
        out = tmp_path / "t.npz"
        flags = ("--keys", str(keys)) if curve else ()
        result = neuroweb("trace", "--source", f"127.0.0.1:{relay.port}", "--prompt", PROMPT,
                          "--tokens", "8", "--out", str(out), *flags)  # fmt: skip
        assert result.returncode == 0, result.stderr
    finally:
        relay.close()
        server.stop()
    from visualizer.trace import read_trace

    texts = [t for t in read_trace(out).arrays["token_text"] if len(t.strip()) >= 3]
    seen = bytes(relay.bytes)
    found = [t for t in (PROMPT, "lighthouses", *texts) if t.encode() in seen]
    if curve:
        assert not found, found
    else:
        assert PROMPT.encode() in seen and found


def test_beyond_loopback_keys_are_needed_and_an_unknown_client_is_not_let_in(tiny_llama_dir,
                                                                              tmp_path):
    from tests.test_cli import _assert_user_error

    _assert_user_error(neuroweb("serve", "--model", str(tiny_llama_dir), "--listen",
                                f"0.0.0.0:{free_port()}"), "--keys")  # fmt: skip
    keys, stranger = tmp_path / "keys", tmp_path / "stranger"
    server = Served(str(tiny_llama_dir), "--keys", str(keys))
    server.address = f"0.0.0.0:{server.port}"
    server.start()
    try:
        stranger.mkdir()
        import shutil

        import zmq.auth

        shutil.copy(keys / "server.key", stranger / "server.key")
        zmq.auth.create_certificates(stranger, "client")  # a pair the server does not hold
        here = f"127.0.0.1:{server.port}"
        refused = neuroweb("trace", "--source", here, "--keys", str(stranger), "--prompt", "hi",
                           "--out", str(tmp_path / "x.npz"))  # fmt: skip
        assert refused.returncode == 2 and "did not accept this client's key" in refused.stderr
        ok = neuroweb("trace", "--source", here, "--keys", str(keys), "--prompt", "hi",
                      "--tokens", "4", "--out", str(tmp_path / "y.npz"))  # fmt: skip
        assert ok.returncode == 0, ok.stderr
    finally:
        server.stop()


def test_a_compact_frame_with_a_scale_and_no_values_is_a_bad_message_not_a_dead_thread():
    """What once ended the client's socket thread silently: `hidden.scale` without `hidden`."""
    frame = {"type": "frame", "seq": 1, "request": 0, "index": 0, "token_id": 1, "text": "x",
             "is_prompt": True, "context_start": 0, "topk_text": [], "entropy": 0.0,
             "lens_text": [], "arrays": [{"name": "hidden.scale", "dtype": "<f4", "shape": [2]}]}
    header, buffers = wire.unpack([*_raw(frame), b"\0" * 8], wire.MAX_STATUS, wire.ServerMessage)
    with pytest.raises(wire.WireError, match="hidden.scale does not fit hidden"):
        wire.frame_from(header, buffers)


def test_a_compact_frame_decodes_to_the_real_values_within_half_an_int8_step(tiny_llama):
    """An ordinary model's frames sent at the compact detail: the residual stream and the
    MLP's write travel as int8 with a scale per row, and come back as float32 within half a
    step of every value, each row on its own step (block 1's MLP ablated: its all-zero write
    comes back exactly zero; the same frames again with a stream that grows tenfold a block,
    as a trained model's does: one scale for the whole frame would fail). Every other array
    is what the detail sent."""
    from dataclasses import replace

    import numpy as np

    from visualizer.config import CaptureSettings, GenerationSettings
    from visualizer.detail import detail_named
    from visualizer.interventions import interventions_from
    from visualizer.model.generate import generate_frames

    detail = detail_named("compact")
    frames = list(generate_frames(tiny_llama, "Hello there.", GenerationSettings(max_tokens=4,
                                  temperature=0.0), CaptureSettings(), detail=detail,
                                  interventions=interventions_from(("mlp:1",), ())))  # fmt: skip
    growth = 10.0 ** np.arange(len(frames[0].hidden))[:, None]  # [L+1, 1]: 1, 10, 100, 1000
    grown = [replace(f, hidden=f.hidden.astype(np.float32) * growth) for f in frames]
    eps = np.finfo(np.float32).eps
    coarsest = 0.0  # the largest error seen, in steps: the values were really rounded
    for frame in frames + grown:
        header, buffers = wire.unpack(wire.frame_to(frame, 1, 1, detail), 1 << 24,
                                      wire.ServerMessage)  # fmt: skip
        sent = {spec.name: spec.dtype for spec in header.arrays}
        back = wire.frame_from(header, buffers)
        for name in wire.QUANTIZED:
            assert sent[name] == "|i1" and sent[f"{name}.scale"] == "<f4", sent
            value, decoded = getattr(frame, name).astype(np.float32), getattr(back, name)
            assert decoded.dtype == np.float32 and decoded.shape == value.shape
            top = np.abs(value).max(axis=-1, keepdims=True)  # [rows, 1] each row's own max
            step = top / 127  # int8 × scale, the scale = the row's max / 127
            # round(v ÷ step) × step is within half a step of v; the division and the product
            # each round in float32, by at most half an ulp of a value up to the row's max
            tolerance = step / 2 + top * eps
            error = np.abs(decoded - value)
            assert np.all(error <= tolerance), (name, frame.index, (error - tolerance).max())
            coarsest = max(coarsest, float((error / np.where(step > 0, step, 1)).max()))
        assert not back.mlp_write[1].any()  # the ablated MLP's zero row: zero, not 0 × 1/127
        for name in ("mlp", "attn", "attn_sink", "topk_ids", "topk_probs", "lens_probs"):
            value = getattr(frame, name)
            assert np.array_equal(getattr(back, name), value.astype(getattr(back, name).dtype))
    assert 0.25 < coarsest <= 0.5 + 1e-4, coarsest


def test_a_status_describing_a_billion_blocks_is_refused_before_anything_is_allocated():
    status = {"type": "status", "server": "x", "status": {
        "state": "ready", "architecture": {"blocks": {"value": 10**9}, "block": []}}}
    message, _ = wire.unpack(_raw(status), wire.MAX_STATUS, wire.ServerMessage)
    with pytest.raises(wire.WireError, match="blocks"):
        wire.status_from(message.status, None)


def test_msgpack_clients_write_ints_for_floats_and_the_wire_takes_them():
    header = {"type": "generate", "request": 1, "prompt": "x",
              "gen": {"temperature": 1, "top_p": 1}}  # fmt: skip
    message, _ = wire.unpack([msgpack.packb({"v": wire.WIRE_VERSION, **header})], 1 << 20)
    assert message.gen.temperature == 1.0 and isinstance(message.gen.temperature, float)


def test_a_kiosk_refused_by_its_server_backs_off_and_says_so_once(tiny_llama_dir, tmp_path,
                                                                  monkeypatch):
    """A kiosk given the wrong token: it is refused for good, tries again after 1, 2, 4 … s
    (the server may have been set up anew), and its log says so once, not every frame."""
    from tests.test_server import TOKEN, _frames_until, headless_kiosk

    monkeypatch.chdir(tmp_path)
    token, wrong = tmp_path / "token", tmp_path / "wrong"
    token.write_text(TOKEN)
    wrong.write_text("not-the-token-at-all")
    server = Served(str(tiny_llama_dir), "--token-file", str(token)).start()
    log_file = tmp_path / "kiosk.log"
    try:
        with headless_kiosk({
            "model": {"source": server.address, "token_file": str(wrong)},
            "kiosk": {"tokens": 4, "log_file": str(log_file), "attract_file": ""},
        }) as kiosk:  # fmt: skip
            began, frames = time.monotonic(), [0]

            def tick() -> bool:
                kiosk.tick()
                frames[0] += 1
                return time.monotonic() - began > 6.0

            _frames_until(kiosk.app, tick, seconds=30)
    finally:
        server.stop()
    text = log_file.read_text()
    said = [line for line in text.splitlines() if "restarting" in line]
    assert frames[0] > 100 and 1 <= kiosk.restarts <= 4, (frames[0], kiosk.restarts)
    assert len(said) == 1 and "refused the token" in text, text


@pytest.mark.alone  # half a second must hold a token of the tiny model
def test_no_answer_runs_past_the_server_s_time_limit(tiny_llama_dir, tmp_path):
    preset = tmp_path / "serve.toml"
    preset.write_text("[serve]\nmax_answer_s = 0.5\n")
    server = Served(str(tiny_llama_dir), "--preset", str(preset)).start()
    sock = _raw_client(server.address)
    try:
        _hello(sock)
        sock.send_multipart(_raw({**ORDINARY, "request": 1, "gen": {"max_tokens": 1000}}))
        seen = _until(sock, lambda m: isinstance(m, wire.StatusMessage)
                      and m.status.request == 1 and m.status.state == "stopped")  # fmt: skip
        assert "limit of 0.5 s" in seen[-1].status.message
        generated = [m for m in seen if isinstance(m, wire.FrameMessage) and not m.is_prompt]
        assert 0 < len(generated) < 1000
    finally:
        sock.close()
        server.stop()


@pytest.mark.parametrize("level", ["full", "reduced", "compact"])
def test_a_client_s_frame_limit_holds_every_real_frame_and_no_more_than_it_needs(tiny_llama,
                                                                                  level):
    """wire.frame_limit is what a client lets in per message: every frame of a run (with its
    ghost) fits it, and it is sized by the model, not a flat 256 MiB."""
    from visualizer.config import CaptureSettings, GenerationSettings
    from visualizer.detail import detail_named
    from visualizer.interventions import interventions_from
    from visualizer.model.generate import generate_frames

    detail = detail_named(level)
    gen = GenerationSettings(max_tokens=6, temperature=0.0, context=64)
    frames = list(generate_frames(tiny_llama, "Hello there.", gen, CaptureSettings(),
                                  detail=detail, ghost=True,
                                  interventions=interventions_from(("mlp:1",), ())))  # fmt: skip
    assert any(f.ghost is not None for f in frames)
    limit = wire.frame_limit(tiny_llama.architecture, detail, gen.context)
    biggest = max(wire.frame_bytes(wire.frame_to(f, 1, 1, detail)) for f in frames)
    assert biggest <= limit < wire.MAX_HEADER + 4 * 2**20, (biggest, limit)


def test_a_remote_trace_cut_off_mid_answer_is_not_written_as_whole(tiny_llama_dir):
    """The server goes mid-answer (its model slowed to 50 ms a pass, so the answer is still
    running): `trace --source` says the answer was cut off and gives up (exit 1, one line)
    instead of writing the part it had as if it were the run."""
    from visualizer.errors import Unreachable
    from visualizer.sources.remote import CUT_OFF
    from visualizer.tracer import run_model

    server, thread, address = _in_process(tiny_llama_dir)
    try:
        deadline = time.monotonic() + 60
        while server.model.lm is None:
            assert time.monotonic() < deadline and thread.is_alive()
            time.sleep(0.05)
        server.model.lm.model.model.embed_tokens.register_forward_pre_hook(
            lambda module, args: time.sleep(0.05))  # fmt: skip

        def stop_once_generating() -> None:
            until = time.monotonic() + 60
            while server.status.state != "generating" and time.monotonic() < until:
                time.sleep(0.05)
            time.sleep(0.5)  # some frames out
            server.stop()

        stopper = threading.Thread(target=stop_once_generating)
        stopper.start()
        settings = load_settings("default", {"model": {"source": address},
                                             "generation": {"max_tokens": 1000}})  # fmt: skip
        with pytest.raises(Unreachable) as cut:
            run_model(settings, "Count to a thousand.")
        # the server's own last status says so, or the client finds the connection gone
        assert wire.SERVER_STOPPING in str(cut.value) or CUT_OFF in str(cut.value)
        assert "no trace written" in str(cut.value)
        stopper.join(60)
    finally:
        server.stop()
        thread.join(30)
