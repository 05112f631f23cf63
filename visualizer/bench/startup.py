"""The bench's start-up figures, each measured in a fresh interpreter (`python -m
visualizer.bench KIND`, see __main__.py) so that nothing this process has loaded or warmed counts:
loading the model, the first generated token, the live demo's first frame and its answer's first
word on screen."""

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable

from visualizer.bench.decode import PROMPT
from visualizer.config import load_settings


def probe(kind: str, cache_dir: str | None = None, env: dict[str, str] | None = None) -> dict:
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


def _load() -> dict:
    from visualizer.model.load import load_model

    t = time.perf_counter()
    load_model("")
    return {"load_s": time.perf_counter() - t}


def _first_token() -> dict:
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


def _first_frame() -> dict:
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


# what `probe(kind)` runs in the fresh interpreter
PROBES: dict[str, Callable[[], dict]] = {
    "load": _load,
    "first-token": _first_token,
    "first-frame": _first_frame,
}
