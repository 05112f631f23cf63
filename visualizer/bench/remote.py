"""The bench's figures of a model served over the network: a `neuroweb serve` on loopback, its
decode rate beside a local model process's at the same detail, how soon a client waiting for a
restarted server gets frames again, and what one token's frame costs on the wire."""

import socket
import subprocess
import sys
import time
from pathlib import Path

from visualizer.bench.decode import PROMPT, consume, rate, wait_ready
from visualizer.bench.startup import probe
from visualizer.config import CaptureSettings, GenerationSettings, load_settings


def _serve(port: int) -> subprocess.Popen:
    """`neuroweb serve` of the embedded model on loopback, once it serves."""
    server = subprocess.Popen([sys.executable, "-m", "visualizer", "serve", "--listen",
                               f"127.0.0.1:{port}"], stderr=subprocess.PIPE, text=True)  # fmt: skip
    for line in server.stderr:
        if "serving" in line:
            return server
    raise RuntimeError(f"the server did not start (exit {server.wait()})")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def remote_figures(tokens: int) -> dict:
    """remote_tok_s beside a local process at the same detail, and reconnect_s."""
    from visualizer.sources.local import LocalSource
    from visualizer.sources.remote import RemoteSource

    port = _free_port()
    gen = {"temperature": 0.0, "max_tokens": tokens}
    remote = load_settings(None, {"generation": gen, "model": {"source": f"127.0.0.1:{port}",
                                                               "detail": "reduced"}})  # fmt: skip
    out: dict = {}
    server = _serve(port)
    try:
        with RemoteSource(remote) as source:
            wait_ready(source)
            arrivals, _ = consume(source, source.generate(PROMPT), busy=False)
            out["remote_tok_s"] = rate(arrivals)
            server.kill()  # the server dies between answers; a client waits for it
            server.wait()
            deadline = time.monotonic() + 30
            while source.drain(timeout=0.2).status.state != "reconnecting":
                if time.monotonic() > deadline:
                    raise RuntimeError("the client never noticed the server had gone")
            server = _serve(port)
            ready = time.perf_counter()
            wait_ready(source, 30)
            request = source.generate(PROMPT, GenerationSettings(temperature=0.0, max_tokens=4))
            while not any(not f.is_prompt for f in source.drain(timeout=0.5).frames):
                pass
            out["reconnect_s"] = time.perf_counter() - ready
            consume(source, request, busy=False)
        # kept warm: a fresh `neuroweb run --source` against the server that is already up
        served = probe("first-frame", env={"NEUROWEB_BENCH_SOURCE": remote.model.source})
        out["first_token_s_served"] = served["first_token_on_screen_s"]
    finally:
        server.kill()
        server.wait()
    local = load_settings(None, {"generation": gen, "model": {"detail": "reduced"}})
    with LocalSource(local) as source:
        wait_ready(source)
        arrivals, _ = consume(source, source.generate(PROMPT), busy=False)
        out["remote_local_tok_s"] = rate(arrivals)
    out["remote_ratio"] = out["remote_tok_s"] / out["remote_local_tok_s"]
    return out


def bytes_per_token(lm) -> dict:
    """One generated token's message size per detail level: SmolLM2 measured, Llama-3-70B
    computed from its config's shapes (its frame deep into a 4,096-token context)."""
    import numpy as np
    from transformers import LlamaConfig

    from visualizer import wire
    from visualizer.detail import LEVELS
    from visualizer.frame import Frame
    from visualizer.model.generate import generate_frames
    from visualizer.model.lens import lens_rows

    out: dict = {}
    gen = GenerationSettings(max_tokens=32, temperature=0.0)
    for name, detail in LEVELS.items():
        sizes = [wire.frame_bytes(wire.frame_to(f, 1, 1, detail)) for f in generate_frames(
            lm, PROMPT, gen, CaptureSettings(), detail=detail) if not f.is_prompt]  # fmt: skip
        out[f"bytes_per_token_smollm2_{name}"] = round(sum(sizes) / len(sizes))
    big = LlamaConfig(
        hidden_size=8192,
        num_hidden_layers=80,
        num_attention_heads=64,
        num_key_value_heads=8,
        intermediate_size=28672,
    )  # Llama-3-70B's shapes
    layers, width, heads = big.num_hidden_layers, big.hidden_size, big.num_attention_heads
    cap = CaptureSettings()  # the default logit lens: every 4th layer and the last
    lensed = lens_rows(layers, cap.lens_every)
    lens_ids = np.full((layers + 1, cap.lens_candidates), -1, np.int32)
    lens_ids[list(lensed)] = 1
    for name in ("reduced", "compact"):
        detail = LEVELS[name]
        dtype = np.float16 if detail.dtype == "float16" else np.float32
        index = 4095
        frame = Frame(
            index=index, token_id=1, text=" word", is_prompt=False, context_start=0,
            hidden=np.ones((layers + 1, width), dtype), mlp=np.ones((layers, detail.nodes), dtype),
            mlp_write=np.ones((layers, width), dtype), experts=np.zeros((layers, 0), dtype),
            attn=np.ones((layers, heads, detail.attention), dtype),
            attn_sink=np.ones((layers, heads), dtype), topk_ids=np.arange(10),
            topk_probs=np.ones(10, np.float32), topk_text=(" word",) * 10, entropy=1.0,
            lens_ids=lens_ids, lens_probs=np.ones(lens_ids.shape, np.float32),
            lens_text=tuple(" word" if row in lensed else "" for row in range(layers + 1)),
        )  # fmt: skip
        out[f"bytes_per_token_llama3_70b_{name}"] = wire.frame_bytes(
            wire.frame_to(frame, 1, 1, detail))  # fmt: skip
    return out


VIEWERS = (0, 1, 2, 4, 8)  # viewers watching beside the asker, in turn


def viewer_costs(tokens: int) -> dict:
    """What each viewer of one served model costs the server (`serve`'s many viewers): for each
    count in VIEWERS, an answer of `tokens` tokens at the reduced detail asked by one client
    and watched by that many more on loopback; the server's network side (its network thread
    and ZeroMQ's I/O threads: the model thread is left out) in CPU ms a generated token, and
    the bytes a frame it sent to each client (the prompt's frames and the answer's)."""
    import zmq

    from visualizer import wire
    from visualizer.detail import detail_named

    port = _free_port()
    server = _serve(port)
    ctx = zmq.Context()
    costs: dict[str, dict] = {}
    try:
        gen = GenerationSettings(temperature=0.0, max_tokens=tokens)
        for request, count in enumerate(VIEWERS, start=1):
            socks = [ctx.socket(zmq.DEALER) for _ in range(count + 1)]
            for i, sock in enumerate(socks):
                sock.connect(f"tcp://127.0.0.1:{port}")
                sock.send_multipart(wire.pack(wire.Hello(detail=detail_named("reduced"),
                                                         watch=i > 0)))  # fmt: skip
            time.sleep(0.5)  # every hello answered
            for sock in socks:
                while sock.poll(0):
                    sock.recv_multipart()
            before = _network_cpu_s(server.pid)
            socks[0].send_multipart(wire.pack(wire.Generate(request=request, prompt=PROMPT,
                                                            gen=gen)))  # fmt: skip
            received, frames, generated = _watch(socks, request)
            cpu = _network_cpu_s(server.pid) - before
            costs[str(count)] = {"network_cpu_ms_per_token": 1000 * cpu / generated,
                                 "bytes_per_frame_per_client": received / (count + 1)
                                 / frames}  # fmt: skip
            for sock in socks:
                sock.send_multipart(wire.pack(wire.Bye()))
                sock.close(linger=100)
    finally:
        ctx.term()
        server.terminate()
        server.wait()
    base = costs["0"]["network_cpu_ms_per_token"]
    for count, cost in costs.items():
        if int(count):
            cost["extra_cpu_ms_per_token_per_viewer"] = (
                cost["network_cpu_ms_per_token"] - base) / int(count)  # fmt: skip
    return {"viewer_costs": costs}


def _watch(socks: list, request: int) -> tuple[int, int, int]:
    """Bytes all `socks` took in until the asker's (the first's) answer `request` finished,
    the frames the asker took, and the tokens generated."""
    import zmq

    from visualizer import wire

    poller = zmq.Poller()
    for sock in socks:
        poller.register(sock, zmq.POLLIN)
    received, frames, generated, done = 0, 0, 0, False
    while not done:
        ready = dict(poller.poll(60_000))
        if not ready:
            raise RuntimeError("the server sent nothing for 60 s")
        for sock in ready:
            parts = sock.recv_multipart()
            received += sum(len(part) for part in parts)
            if sock is not socks[0]:
                continue
            message, _ = wire.unpack(parts, 1 << 26, wire.ServerMessage)
            if isinstance(message, wire.FrameMessage):
                frames += 1
                generated += not message.is_prompt
            elif isinstance(message, wire.StatusMessage):
                body = message.status
                done = body.request == request and body.state in ("finished", "stopped")
    return received, max(frames, 1), max(generated, 1)


def _network_cpu_s(pid: int) -> float:
    """CPU seconds of `pid`'s network side: its main thread (the serve's network thread) and
    ZeroMQ's own threads (named ZMQbg/…: they move the bytes), not the model's."""
    import psutil

    total = 0.0
    for thread in psutil.Process(pid).threads():  # psutil has their times, /proc their names
        name = Path(f"/proc/{pid}/task/{thread.id}/comm").read_text()
        if thread.id == pid or name.startswith("ZMQbg"):
            total += thread.user_time + thread.system_time
    return total
