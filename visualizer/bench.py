"""`neuroweb bench`: speed and memory of the model stream, measured in one run, as JSON.

Figures (tok/s are decode rates after the prompt, greedy, the embedded SmolLM2):
  bare_tok_s           sdpa, no capture, this process's main thread
  capture_tok_s        full capture in the model process, a consumer draining the handoff
  capture_ratio        capture_tok_s / bare_tok_s
  capture_tok_s_busy_consumer         the same while the consumer runs Python for half of
                                      every 60 Hz frame (a render loop's shape)
  thread_capture_tok_s_busy_consumer  the same capture as a thread of the consumer's process:
                                      the design the stream process replaces (GIL contention)
  load_s_cold / load_s_warm   load_model() in a fresh process, empty / warm cache
  first_token_s_warm   fresh `neuroweb run`-like process: interpreter start to the first
                       generated token arriving in the consumer
  peak_rss_mb          the model process's peak resident memory while streaming
"""

import json
import os
import subprocess
import sys
import tempfile
import threading
import time

import psutil

from visualizer.config import CaptureSettings, GenerationSettings, Settings, load_settings
from visualizer.handoff import Handoff

PROMPT = "Write a long story about a lighthouse keeper and a storm."
FRAME_S = 1 / 60
BUSY_S = 0.008  # Python work per frame in the busy consumer


def _say(quiet: bool, text: str) -> None:
    if not quiet:
        print(f"bench: {text}", file=sys.stderr, flush=True)


def _probe(kind: str, cache_dir: str | None = None) -> dict:
    """Run one measurement in a fresh interpreter; it prints a JSON object."""
    env = dict(os.environ)
    if cache_dir:
        env["NEUROWEB_CACHE_DIR"] = cache_dir
    out = subprocess.run(
        [sys.executable, "-m", "visualizer.bench", kind],
        capture_output=True, text=True, env=env, check=True,
    )  # fmt: skip
    return json.loads(out.stdout.strip().splitlines()[-1])


def _probe_load() -> dict:
    from visualizer.model.load import load_model

    t = time.perf_counter()
    load_model("")
    return {"load_s": time.perf_counter() - t}


def _probe_first_token() -> dict:
    from visualizer.model.stream import ModelStream

    started = psutil.Process().create_time()
    settings = load_settings(None, {"generation": {"temperature": 0.0, "max_tokens": 2}})
    with ModelStream(settings) as stream:
        stream.generate(PROMPT)
        while True:
            batch = stream.handoff.drain(timeout=60)
            if batch.failure:
                raise RuntimeError(batch.failure.message)
            if any(not f.is_prompt for f in batch.frames):
                return {"first_token_s": time.time() - started}


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
    from visualizer.model.stream import ModelStream

    with ModelStream(settings) as stream:
        while stream.handoff.drain(timeout=60).status.state != "ready":
            pass
        request = stream.generate(PROMPT)
        arrivals, peak = _consume(stream.handoff, request, busy, stream.pid)
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


def bench_command(tokens: int = 64, skip_cold: bool = False, quiet: bool = False) -> int:
    import torch

    from visualizer.model.load import load_model

    cores = os.cpu_count() or 1
    out: dict = {"cores": cores, "tokens": tokens, "torch_threads": torch.get_num_threads()}
    if not skip_cold:
        _say(quiet, "cold load (empty cache, fresh process)")
        with tempfile.TemporaryDirectory() as empty:
            out["load_s_cold"] = _probe("load", empty)["load_s"]
    _say(quiet, "warm load and first token (fresh processes)")
    out["load_s_warm"] = _probe("load")["load_s"]
    out["first_token_s_warm"] = _probe("first-token")["first_token_s"]

    lm = load_model("")
    _say(quiet, "bare decode")
    out["bare_tok_s"] = bare_tok_s(lm, tokens)
    gen = {"temperature": 0.0, "max_tokens": tokens}
    settings = load_settings(None, {"generation": gen})
    _say(quiet, "capture in the model process, idle consumer")
    out["capture_tok_s"], out["peak_rss_mb"] = stream_tok_s(settings, busy=False)
    out["capture_ratio"] = out["capture_tok_s"] / out["bare_tok_s"]

    spare = max(1, cores - 1)  # leave a core to the consumer, as the window does
    busy = load_settings(None, {"generation": gen, "model": {"threads": spare}})
    _say(quiet, f"busy consumer: model process ({spare} torch threads)")
    out["capture_tok_s_busy_consumer"], _ = stream_tok_s(busy, busy=True)
    _say(quiet, f"busy consumer: in-process thread ({spare} torch threads)")
    default_threads = torch.get_num_threads()
    torch.set_num_threads(spare)
    out["thread_capture_tok_s_busy_consumer"] = thread_tok_s(lm, busy.generation, busy=True)
    torch.set_num_threads(default_threads)

    out = {k: round(v, 3) if isinstance(v, float) else v for k, v in out.items()}
    print(json.dumps(out, indent=None if quiet else 2))
    return 0


if __name__ == "__main__":
    probes = {"load": _probe_load, "first-token": _probe_first_token}
    print(json.dumps(probes[sys.argv[1]]()))
