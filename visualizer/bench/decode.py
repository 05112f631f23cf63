"""The bench's decode rates: bare decode, the capture in the model process (with a consumer
draining it, idle or busy as a render loop is), the capture as a thread of the consumer's
process, and the unembedding's and the lens's milliseconds per token. Also the prompt every
measurement of the bench answers, and the consumer the other measurements drain sources with."""

import threading
import time

import psutil
from msgspec import structs

from visualizer.config import CaptureSettings, GenerationSettings, Settings
from visualizer.handoff import Handoff

PROMPT = "Write a long story about a lighthouse keeper and a storm."
FRAME_S = 1 / 60
BUSY_S = 0.008  # Python work per frame in the busy consumer
WARM_TOKENS = 32  # the answer a model process gives before its decode rate is measured


def rate(arrivals: list[float]) -> float:
    """Tokens per second over the arrival times of generated frames."""
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
    return rate(arrivals)


def consume(
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


def wait_ready(source, seconds: float = 120.0) -> None:
    """Until `source` has loaded its model; its failure, or two minutes, ends the bench."""
    deadline = time.monotonic() + seconds
    while (batch := source.drain(timeout=0.5)).status.state not in ("ready", "stopped"):
        if batch.failure:
            raise RuntimeError(batch.failure.message)
        if time.monotonic() > deadline:
            raise RuntimeError(f"{source.name} never became ready")


def stream_tok_s(settings: Settings, busy: bool) -> tuple[float, float]:
    """Decode rate and peak RSS of an answer from a model process that has answered once
    (WARM_TOKENS): the once-per-process setup, such as packing the unembedding for oneDNN
    (model/unembed.py), is not a decode rate."""
    from visualizer.sources.local import LocalSource

    with LocalSource(settings) as stream:
        wait_ready(stream)
        warm = structs.replace(settings.generation, max_tokens=WARM_TOKENS)
        consume(stream, stream.generate(PROMPT, warm), busy=False)
        request = stream.generate(PROMPT)
        arrivals, peak = consume(stream, request, busy, stream.pid)
    return rate(arrivals), peak


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
    arrivals, _ = consume(handoff, 1, busy)
    producer.join()
    return rate(arrivals)


def unembedding_ms(lm, calls: int = 50) -> dict:
    """Per generated token, in-process, on a real token's residual stream (medians of `calls`,
    the three taken in turn): the model's unembedding of its own row as transformers runs it
    (unembed_ms_stock) and as the capture's hooks run it (unembed_ms), and what the default
    lens adds to the latter: its rows in the same product, and their top words (lens_ms)."""
    import numpy as np
    import torch
    import torch.nn.functional as F

    from visualizer.model.generate import generate_frames
    from visualizer.model.lens import lens_input, lens_rows, lens_words, unembedded_rows
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
