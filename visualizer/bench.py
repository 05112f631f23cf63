"""`neuroweb bench`: speed and memory of the model stream, measured in one run, as JSON.

Figures (tok/s are decode rates after the prompt, greedy, the embedded SmolLM2):
  bare_tok_s           sdpa, no capture, this process's main thread, and
  capture_tok_s        full capture in the model process, a consumer draining the handoff,
                       the process's second answer (its first, WARM_TOKENS long, pays the
                       once-per-process setup): each the median of PAIRED_RUNS runs, taken
                       in turn (the shared machine's speed drifts by 2x); their runs in *_runs
  capture_ratio        capture_tok_s / bare_tok_s
  capture_plain_tok_s  the capture without the logit lens (capture.lens_every = 0), and
  lens_ratio           capture_tok_s (the default lens: every 4th layer and the last) over it
  lens_ms              the default lens's milliseconds per generated token, in-process: what
                       its rows add to the unembedding's product, and their top words
  unembed_ms_stock / unembed_ms   the model's own unembedding of a token, in-process: as
                       transformers runs it, and as the capture's hooks do (model/unembed.py)
  lens_share_of_bare_token   that over a bare token's time: steadier than lens_ratio
  ghost_ratio          with an ablation and its ghost (a batch of two, no lens), over it
  capture_tok_s_busy_consumer         the same while the consumer runs Python for half of
                                      every 60 Hz frame (a render loop's shape)
  thread_capture_tok_s_busy_consumer  the same capture as a thread of the consumer's process:
                                      the design the stream process replaces (GIL contention)
  load_s_cold / load_s_warm   load_model() in a fresh process, empty / warm cache
  first_token_s_cold / _warm   fresh process, empty / warm cache: interpreter start to the
                       first generated token arriving from a model process it starts
  first_token_on_screen_s_warm   fresh `neuroweb run --prompt`-like process (offscreen,
                       drawing as a window does: model process first, window clock and frame
                       caps, no waiting on the model): to the answer's first word drawn
  first_token_s_served the same with `--source`, a `neuroweb serve` already up (kept warm)
  peak_rss_mb          the model process's peak resident memory while streaming
  first_frame_s        fresh process: interpreter start to the first complete frame of the live
                       demo (offscreen through EGL; the model process starts loading beside it)
  render_fps_720p / _1080p   the live demo offscreen with RealClock, default preset, the model
                       streaming from its process (all cores but one), the governor on: median
                       frames per second over RENDER_S seconds, with frame_ms_median/p99 and
                       the render scale and detail the governor settled at
  passes_ms_720p / _1080p   then, over PASS_FRAMES more frames with the HUD on, each pass's
                       median time as the HUD measures it (render/passes.py), and
  panel_draws_720p / _1080p  the draw calls of the text and panels in a frame
  render_fps_720p_glitch, frame_ms_p99_720p_glitch, passes_ms_720p_glitch   the same in
                       the glitch look (cuts, stutters, word flashes, colour splits), and
  held_back_share_720p_glitch   the share of its frames the flash limiter held back (each
                       one a mix in linear light: the costliest frames of that look)
  capture_tok_s_while_rendering   the model's decode rate during the 720p measurement, and
  capture_ratio_while_rendering   its ratio to bare_tok_s
  bare_tok_s_spare_threads        bare decode with all cores but one (what the model process
                                  gets while a window renders)
  offline_render_fps_720p30 / _1080p60   `neuroweb render` of a SmolLM2 trace at 4 tokens
                       a second (no model running): video frames written per second of wall
                       time, encode and the soundtrack included, in as many processes as it
                       chooses, and
  offline_render_fps_720p30_one_process   the same drawn by one process
  synth_cpu_share      CPU seconds the synthesiser needs per second of sound (the live window
                       pays this on its render thread)
  remote_tok_s         decode rate of frames arriving from `neuroweb serve` over loopback (the
                       server a fresh process on this machine, reduced detail), and
  remote_local_tok_s   a local model process at the same detail, measured beside it;
  remote_ratio         their ratio
  bytes_per_token      what one generated token's frame costs on the wire, per detail level:
                       measured on SmolLM2 (the mean over an answer), and computed for a
                       Llama-3-70B config (80 blocks, width 8192, 64 heads, d_ff 28672) deep
                       into a long context
  reconnect_s          the server killed and started again: from it being ready again to the
                       first frame arriving at the client that was waiting
"""

import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil
from msgspec import structs

from visualizer.config import CaptureSettings, GenerationSettings, Settings, load_settings
from visualizer.handoff import Handoff

PROMPT = "Write a long story about a lighthouse keeper and a storm."
RENDER_S = 15.0  # seconds of frames per render measurement, after the governor settles
SETTLE_S = 3.0  # settled: no change of render scale or detail for this long
SETTLE_LIMIT_S = 40.0  # measured from here even if it is still changing
FRAME_S = 1 / 60
BUSY_S = 0.008  # Python work per frame in the busy consumer
PASS_FRAMES = 240  # frames with the HUD's pass timing after each render measurement
PAIRED_RUNS = 5  # bare decode and the capture, measured in turn
OFFLINE_TOKEN_RATE = 4.0  # the offline renders' pace: 48 tokens make a 14 s video, in parts
WARM_TOKENS = 32  # the answer a model process gives before its decode rate is measured


def _say(quiet: bool, text: str) -> None:
    if not quiet:
        print(f"bench: {text}", file=sys.stderr, flush=True)


def _probe(kind: str, cache_dir: str | None = None, env: dict[str, str] | None = None) -> dict:
    """Run one measurement in a fresh interpreter; it prints a JSON object. Its "*_at" wall
    times become "*_s" seconds since the interpreter was launched (psutil's process start
    time is rounded by the kernel's whole-second boot time, so it is not used)."""
    env = dict(os.environ, **(env or {}))
    if cache_dir:
        env["NEUROWEB_CACHE_DIR"] = cache_dir
    launched = time.time()
    out = subprocess.run(
        [sys.executable, "-m", "visualizer.bench", kind],
        capture_output=True, text=True, env=env, check=True,
    )  # fmt: skip
    result = json.loads(out.stdout.strip().splitlines()[-1])
    return {k.removesuffix("_at") + "_s" if k.endswith("_at") else k:
            v - launched if k.endswith("_at") else v for k, v in result.items()}  # fmt: skip


def _probe_load() -> dict:
    from visualizer.model.load import load_model

    t = time.perf_counter()
    load_model("")
    return {"load_s": time.perf_counter() - t}


def _probe_first_token() -> dict:
    from visualizer.sources.local import LocalSource

    settings = load_settings(None, {"generation": {"temperature": 0.0, "max_tokens": 2}})
    with LocalSource(settings) as stream:
        stream.generate(PROMPT)
        while True:
            batch = stream.drain(timeout=60)
            if batch.failure:
                raise RuntimeError(batch.failure.message)
            if any(not f.is_prompt for f in batch.frames):
                return {"first_token_at": time.time()}


def _probe_first_frame() -> dict:
    """The live path as `neuroweb run --prompt` takes it, offscreen: its first frame, then the
    first word of the answer on screen (the window's clock and frame cap, the model loading in
    its process beside the loading screen)."""
    from visualizer.sources import model_first

    served = os.environ.get("NEUROWEB_BENCH_SOURCE", "")  # HOST:PORT of a warm server, if any
    settings = load_settings("default", {"model": {"source": served}})
    with model_first(settings) as source:
        from visualizer.clock import RealClock
        from visualizer.gl.context import HeadlessTarget
        from visualizer.render.app import App

        target = HeadlessTarget((settings.window.width, settings.window.height), like_a_window=True)
        app = App(settings, target, source, RealClock(), adaptive=True, prompt=PROMPT)
        app.frame()
        first = time.time()
        while not app.intake.arrivals:
            if app.intake.failure or app.intake.user_failure:
                raise RuntimeError(app.intake.failure or app.intake.user_failure)
            app.frame()
        answered = time.time()
        app.release()
        target.close()
    return {"first_frame_at": first, "first_token_on_screen_at": answered}


def render_fps(size: tuple[int, int], quiet: bool, preset: str = "default") -> dict:
    """The live demo rendering offscreen at `size` in `preset`'s look while the model streams
    (see the top)."""
    import numpy as np

    from visualizer.clock import RealClock
    from visualizer.gl.context import HeadlessTarget
    from visualizer.render.app import App
    from visualizer.sources import leave_a_core
    from visualizer.sources.local import LocalSource

    gen = {"temperature": 0.0, "max_tokens": 1000}
    settings = load_settings(preset, {"generation": gen})
    target = HeadlessTarget(size, like_a_window=True)
    with LocalSource(leave_a_core(settings)) as stream:
        app = App(settings, target, stream, RealClock(), adaptive=True, prompt=PROMPT)
        while app.scene.tokens_seen == 0 or app.status.state != "generating":
            app.frame()
            if app.intake.failure or app.intake.user_failure:
                raise RuntimeError(app.intake.failure or app.intake.user_failure)
        _say(quiet, f"{size[0]}x{size[1]}: generating; waiting for the governor to settle")
        # at 1080p its descent from scale 1 took 12 s past the first token: measured then, the
        # frames were the descent's
        start = changed = time.perf_counter()
        setting = (app.governor.scale, app.governor.detail)
        while (time.perf_counter() - changed < SETTLE_S
               and time.perf_counter() - start < SETTLE_LIMIT_S):  # fmt: skip
            app.frame()
            if (app.governor.scale, app.governor.detail) != setting:
                setting, changed = (app.governor.scale, app.governor.detail), time.perf_counter()
        _say(quiet, f"{size[0]}x{size[1]}: measuring")
        times, arrivals = [], []
        limiter = app.looks.current.limiter
        held_before = limiter.held_back if limiter is not None else 0
        end = time.perf_counter() + RENDER_S
        while time.perf_counter() < end:
            start = time.perf_counter()
            last = app.intake.arrivals[-1] if app.intake.arrivals else 0.0
            app.frame()
            times.append(time.perf_counter() - start)
            arrivals.extend(t for t in app.intake.arrivals if t > last)
        scale, detail = app.governor.scale, app.governor.detail
        held = (limiter.held_back - held_before) / len(times) if limiter is not None else 0.0
        app.hud.on = True  # then pass by pass, as the HUD samples them (one frame in 8)
        for _ in range(PASS_FRAMES):
            app.frame()
        passes, draws = app.passes.medians(), app.looks.current.painter.draws
        app.release()
    target.close()
    median = float(np.median(times))
    return {
        "passes_ms": {name: round(ms, 2) for name, ms in passes.items()},
        "panel_draws": draws,
        "fps": 1 / median,
        "frame_ms_median": 1000 * median,
        "frame_ms_p99": 1000 * float(np.percentile(times, 99)),
        "render_scale": scale,
        "detail": detail,
        "tok_s": _rate(arrivals) if len(arrivals) > 1 else 0.0,
        "held_back_share": held,
    }


def trace_frames(lm) -> list:
    """A 48-token greedy SmolLM2 run, as `neuroweb trace` would save it."""
    from visualizer.model.generate import generate_frames

    gen = GenerationSettings(max_tokens=48, temperature=0.0)
    return list(generate_frames(lm, PROMPT, gen, CaptureSettings()))


def offline_fps(frames: list, name: str, size: tuple[int, int], fps: int,
                processes: int = 0) -> float:  # fmt: skip
    """Frames per wall-clock second of an offline render, encode and soundtrack included;
    `processes` as `render --processes` takes it."""
    from visualizer.render.offline import Run, paced, render_video

    run = Run(frames, name, PROMPT, None)
    timeline = paced(frames, fps, OFFLINE_TOKEN_RATE)
    with tempfile.TemporaryDirectory() as folder:
        start = time.perf_counter()
        render_video(run, load_settings("default"), Path(folder) / "bench.mp4", size, fps,
                     timeline, processes=processes)  # fmt: skip
        elapsed = time.perf_counter() - start
    return timeline[1] / elapsed


def synth_cpu_share(frames: list) -> float:
    """CPU seconds the soundtrack's synthesiser takes per second of sound (8 tokens/s)."""
    from visualizer.render.offline import LEAD_S, TAIL_S
    from visualizer.sound.synth import RATE, Synth
    from visualizer.sources.player import schedule

    times = schedule(frames, 8.0, LEAD_S)
    synth = Synth(load_settings("default").sound)
    start = time.process_time()
    for frame, at in zip(frames, times, strict=True):
        synth.render_until(round(at * RATE))
        synth.cue(frame)
    synth.render_until(round((times[-1] + TAIL_S) * RATE))
    return (time.process_time() - start) / (synth.position / RATE)


def _rate(arrivals: list[float]) -> float:
    return (len(arrivals) - 1) / (arrivals[-1] - arrivals[0])


def bare_tok_s(lm, tokens: int) -> float:
    """Plain cached decode with sdpa, no hooks: the ceiling the capture is measured against."""
    import torch
    from transformers import DynamicCache

    from visualizer.model.text import encode_prompt

    ids = encode_prompt(lm.tokenizer, PROMPT, raw=False)
    cache = DynamicCache(config=lm.model.config)
    arrivals = []
    with torch.no_grad():
        logits = lm.model(input_ids=torch.tensor([ids]), cache=cache).logits
        for _ in range(tokens):
            token = logits[0, -1].argmax()
            logits = lm.model(input_ids=token.view(1, 1), cache=cache).logits
            arrivals.append(time.perf_counter())
    return _rate(arrivals)


def _consume(
    handoff: Handoff, request: int, busy: bool, pid: int | None = None
) -> tuple[list[float], float]:
    """Drain until answer `request` ends; generated-frame arrival times and peak RSS (MB)."""
    arrivals, peak = [], 0.0
    proc = psutil.Process(pid) if pid else None
    while True:
        frame_start = time.perf_counter()
        batch = handoff.drain(timeout=0.0 if busy else 0.5)
        if batch.failure:
            raise RuntimeError(batch.failure.message)
        now = time.perf_counter()
        arrivals += [now for f in batch.frames if not f.is_prompt]
        if proc is not None:
            peak = max(peak, proc.memory_info().rss / 2**20)
        if batch.status.request == request and batch.status.state in ("finished", "stopped"):
            return arrivals, peak
        if busy:  # Python work for part of the frame, then wait for the next one
            while time.perf_counter() - frame_start < BUSY_S:
                pass
            time.sleep(max(0.0, FRAME_S - (time.perf_counter() - frame_start)))


def stream_tok_s(settings: Settings, busy: bool) -> tuple[float, float]:
    """Decode rate and peak RSS of an answer from a model process that has answered once
    (WARM_TOKENS): the once-per-process setup, such as packing the unembedding for oneDNN
    (model/unembed.py), is not a decode rate."""
    from visualizer.sources.local import LocalSource

    with LocalSource(settings) as stream:
        _wait_ready(stream)
        warm = structs.replace(settings.generation, max_tokens=WARM_TOKENS)
        _consume(stream, stream.generate(PROMPT, warm), busy=False)
        request = stream.generate(PROMPT)
        arrivals, peak = _consume(stream, request, busy, stream.pid)
    return _rate(arrivals), peak


def thread_tok_s(lm, gen: GenerationSettings, busy: bool) -> float:
    """The capture loop as a thread beside the consumer, in one process."""
    from visualizer.handoff import Status
    from visualizer.model.generate import generate_frames

    handoff = Handoff()

    def produce() -> None:
        for frame in generate_frames(lm, PROMPT, gen, CaptureSettings()):
            handoff.publish(frame)
        handoff.set_status(Status("finished", request=1))

    producer = threading.Thread(target=produce)
    producer.start()
    arrivals, _ = _consume(handoff, 1, busy)
    producer.join()
    return _rate(arrivals)


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


def _wait_ready(source, seconds: float = 120.0) -> None:
    """Until `source` has loaded its model; its failure, or two minutes, ends the bench."""
    deadline = time.monotonic() + seconds
    while (batch := source.drain(timeout=0.5)).status.state not in ("ready", "stopped"):
        if batch.failure:
            raise RuntimeError(batch.failure.message)
        if time.monotonic() > deadline:
            raise RuntimeError(f"{source.name} never became ready")


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
            _wait_ready(source)
            arrivals, _ = _consume(source, source.generate(PROMPT), busy=False)
            out["remote_tok_s"] = _rate(arrivals)
            server.kill()  # the server dies between answers; a client waits for it
            server.wait()
            deadline = time.monotonic() + 30
            while source.drain(timeout=0.2).status.state != "reconnecting":
                if time.monotonic() > deadline:
                    raise RuntimeError("the client never noticed the server had gone")
            server = _serve(port)
            ready = time.perf_counter()
            _wait_ready(source, 30)
            request = source.generate(PROMPT, GenerationSettings(temperature=0.0, max_tokens=4))
            while not any(not f.is_prompt for f in source.drain(timeout=0.5).frames):
                pass
            out["reconnect_s"] = time.perf_counter() - ready
            _consume(source, request, busy=False)
        # kept warm: a fresh `neuroweb run --source` against the server that is already up
        served = _probe("first-frame", env={"NEUROWEB_BENCH_SOURCE": remote.model.source})
        out["first_token_s_served"] = served["first_token_on_screen_s"]
    finally:
        server.kill()
        server.wait()
    local = load_settings(None, {"generation": gen, "model": {"detail": "reduced"}})
    with LocalSource(local) as source:
        _wait_ready(source)
        arrivals, _ = _consume(source, source.generate(PROMPT), busy=False)
        out["remote_local_tok_s"] = _rate(arrivals)
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
    from visualizer.model.capture import lens_rows
    from visualizer.model.generate import generate_frames

    out: dict = {}
    gen = GenerationSettings(max_tokens=32, temperature=0.0)
    for name, detail in LEVELS.items():
        sizes = [wire.frame_bytes(wire.frame_to(f, 1, 1, detail)) for f in generate_frames(
            lm, PROMPT, gen, CaptureSettings(), detail=detail) if not f.is_prompt]  # fmt: skip
        out[f"bytes_per_token_smollm2_{name}"] = round(sum(sizes) / len(sizes))
    big = LlamaConfig(hidden_size=8192, num_hidden_layers=80, num_attention_heads=64,
                      num_key_value_heads=8, intermediate_size=28672)  # Llama-3-70B's shapes
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


def unembedding_ms(lm, calls: int = 50) -> dict:
    """Per generated token, in-process, on a real token's residual stream (medians of `calls`,
    the three taken in turn): the model's unembedding of its own row as transformers runs it
    (unembed_ms_stock) and as the capture's hooks run it (unembed_ms), and what the default
    lens adds to the latter: its rows in the same product, and their top words (lens_ms)."""
    import numpy as np
    import torch
    import torch.nn.functional as F

    from visualizer.model.capture import lens_input, lens_rows, lens_words, unembedded_rows
    from visualizer.model.generate import generate_frames
    from visualizer.model.unembed import product

    cap = CaptureSettings()
    gen = GenerationSettings(max_tokens=1, temperature=0.0)
    *_, frame = generate_frames(lm, PROMPT, gen, cap)
    parts, layers = lm.parts, len(lm.parts.blocks)
    rows = unembedded_rows(lens_rows(layers, cap.lens_every), layers)  # as Recorder.take
    with torch.no_grad():
        x = lens_input(torch.tensor(frame.hidden), parts)  # [L+1, d]
        own, lensed = x[layers:], x[list(rows)]  # [1, d], [n, d]
        weight, bias = parts.unembed.weight, parts.unembed.bias
        run = product(parts.unembed)

        def with_lens() -> None:
            logits = run(torch.cat([own, lensed]))
            lens_words(logits[1:][None], parts, rows, (1, layers + 1), cap.lens_candidates)

        steps = {"stock": lambda: F.linear(own, weight, bias), "own": lambda: run(own),
                 "lens": with_lens}  # fmt: skip
        times: dict[str, list[float]] = {name: [] for name in steps}
        for _ in range(calls + 1):
            for name, step in steps.items():
                start = time.perf_counter()
                step()
                times[name].append(time.perf_counter() - start)
    ms = {name: float(np.median(t[1:])) * 1e3 for name, t in times.items()}
    return {"unembed_ms_stock": ms["stock"], "unembed_ms": ms["own"],
            "lens_ms": ms["lens"] - ms["own"]}  # fmt: skip


def bench_command(tokens: int = 64, skip_cold: bool = False, quiet: bool = False) -> int:
    import numpy as np
    import torch

    from visualizer.model.load import load_model

    cores = os.cpu_count() or 1
    out: dict = {"cores": cores, "tokens": tokens, "torch_threads": torch.get_num_threads()}
    if not skip_cold:
        _say(quiet, "cold load (empty cache, fresh process)")
        with tempfile.TemporaryDirectory() as empty:
            out["load_s_cold"] = _probe("load", empty)["load_s"]
        with tempfile.TemporaryDirectory() as empty:
            out["first_token_s_cold"] = _probe("first-token", empty)["first_token_s"]
    _say(quiet, "warm load and first token (fresh processes)")
    out["load_s_warm"] = _probe("load")["load_s"]
    out["first_token_s_warm"] = _probe("first-token")["first_token_s"]
    live = _probe("first-frame")
    out["first_frame_s"] = live["first_frame_s"]
    out["first_token_on_screen_s_warm"] = live["first_token_on_screen_s"]

    lm = load_model("")
    gen = {"temperature": 0.0, "max_tokens": tokens}
    settings = load_settings(None, {"generation": gen})
    bare_runs, capture_runs, peaks = [], [], []
    for run in range(PAIRED_RUNS):  # side by side, so a drift of the machine hits both
        _say(quiet, f"bare decode and the capture in the model process ({run + 1}/{PAIRED_RUNS})")
        bare_runs.append(bare_tok_s(lm, tokens))
        rate, peak = stream_tok_s(settings, busy=False)
        capture_runs.append(rate)
        peaks.append(peak)
    out["bare_tok_s"] = float(np.median(bare_runs))
    out["capture_tok_s"] = float(np.median(capture_runs))
    out["capture_ratio"] = out["capture_tok_s"] / out["bare_tok_s"]
    out["bare_tok_s_runs"] = [round(r, 2) for r in bare_runs]
    out["capture_tok_s_runs"] = [round(r, 2) for r in capture_runs]
    out["peak_rss_mb"] = max(peaks)
    _say(quiet, "the capture without the lens, and with an ablation's ghost")
    plain = {"generation": gen, "capture": {"lens_every": 0}}
    out["capture_plain_tok_s"], _ = stream_tok_s(load_settings(None, plain), busy=False)
    ghost = {**plain, "intervene": {"ablate": ["mlp:10"]}}
    out["ghost_tok_s"], _ = stream_tok_s(load_settings(None, ghost), busy=False)
    out["lens_ratio"] = out["capture_tok_s"] / out["capture_plain_tok_s"]
    out.update(unembedding_ms(lm))
    out["lens_share_of_bare_token"] = out["lens_ms"] * out["bare_tok_s"] / 1000
    out["ghost_ratio"] = out["ghost_tok_s"] / out["capture_plain_tok_s"]

    spare = max(1, cores - 1)  # leave a core to the consumer, as the window does
    busy = load_settings(None, {"generation": gen, "model": {"threads": spare}})
    _say(quiet, f"busy consumer: model process ({spare} torch threads)")
    out["capture_tok_s_busy_consumer"], _ = stream_tok_s(busy, busy=True)
    _say(quiet, f"busy consumer: in-process thread ({spare} torch threads)")
    default_threads = torch.get_num_threads()
    torch.set_num_threads(spare)
    out["thread_capture_tok_s_busy_consumer"] = thread_tok_s(lm, busy.generation, busy=True)
    out["bare_tok_s_spare_threads"] = bare_tok_s(lm, tokens)  # the window's model thread count
    torch.set_num_threads(default_threads)

    _say(quiet, "offline renders of a trace, and the soundtrack's synthesiser")
    frames = trace_frames(lm)
    out["offline_render_fps_720p30"] = offline_fps(frames, lm.name, (1280, 720), 30)
    out["offline_render_fps_720p30_one_process"] = offline_fps(frames, lm.name, (1280, 720), 30,
                                                               processes=1)  # fmt: skip
    out["offline_render_fps_1080p60"] = offline_fps(frames, lm.name, (1920, 1080), 60)
    out["synth_cpu_share"] = synth_cpu_share(frames)
    _say(quiet, "a model server over loopback, and bytes per token")
    out.update(remote_figures(tokens))
    out.update(bytes_per_token(lm))
    for name, size in (("720p", (1280, 720)), ("1080p", (1920, 1080))):
        _say(quiet, f"rendering at {name} with the model streaming")
        r = render_fps(size, quiet)
        out[f"render_fps_{name}"] = r["fps"]
        out[f"frame_ms_median_{name}"] = r["frame_ms_median"]
        out[f"frame_ms_p99_{name}"] = r["frame_ms_p99"]
        out[f"render_scale_{name}"] = r["render_scale"]
        out[f"detail_{name}"] = r["detail"]
        out[f"passes_ms_{name}"] = r["passes_ms"]
        out[f"panel_draws_{name}"] = r["panel_draws"]
        if name == "720p":
            out["capture_tok_s_while_rendering"] = r["tok_s"]
            out["capture_ratio_while_rendering"] = r["tok_s"] / out["bare_tok_s"]
    _say(quiet, "rendering at 720p in the glitch look with the model streaming")
    r = render_fps((1280, 720), quiet, "glitch")
    out["render_fps_720p_glitch"] = r["fps"]
    out["frame_ms_p99_720p_glitch"] = r["frame_ms_p99"]
    out["held_back_share_720p_glitch"] = r["held_back_share"]
    out["passes_ms_720p_glitch"] = r["passes_ms"]

    out = {k: round(v, 3) if isinstance(v, float) else v for k, v in out.items()}
    print(json.dumps(out, indent=None if quiet else 2))
    return 0


if __name__ == "__main__":
    probes = {
        "load": _probe_load, "first-token": _probe_first_token, "first-frame": _probe_first_frame
    }
    print(json.dumps(probes[sys.argv[1]]()))
