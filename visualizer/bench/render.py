"""The bench's drawing figures: the live demo offscreen while the model streams (frame rate,
frame times, each pass's cost, what the governor settled at), the offline renders of a trace,
and the soundtrack's synthesiser's share of a CPU."""

import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from visualizer.bench.decode import PROMPT, rate
from visualizer.config import CaptureSettings, GenerationSettings, load_settings

RENDER_S = 15.0  # seconds of frames per render measurement, after the governor settles
SETTLE_S = 3.0  # settled: no change of render scale or detail for this long
SETTLE_LIMIT_S = 40.0  # measured from here even if it is still changing
PASS_FRAMES = 240  # frames with the HUD's pass timing after each render measurement
IDLE_S = 10.0  # seconds of the window at rest measured for its CPU
OFFLINE_TOKEN_RATE = 4.0  # the offline renders' pace: 48 tokens make a 14 s video, in parts


def render_fps(size: tuple[int, int], say: Callable[[str], None], preset: str = "default") -> dict:
    """The live demo rendering offscreen at `size` in `preset`'s look while the model streams
    (see the package's figures); `say` tells how far it is."""
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
        say(f"{size[0]}x{size[1]}: generating; waiting for the governor to settle")
        # at 1080p its descent from scale 1 took 12 s past the first token: measured then, the
        # frames were the descent's
        start = changed = time.perf_counter()
        setting = (app.governor.scale, app.governor.detail)
        while (time.perf_counter() - changed < SETTLE_S
               and time.perf_counter() - start < SETTLE_LIMIT_S):  # fmt: skip
            app.frame()
            if (app.governor.scale, app.governor.detail) != setting:
                setting, changed = (app.governor.scale, app.governor.detail), time.perf_counter()
        say(f"{size[0]}x{size[1]}: measuring")
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
        "tok_s": rate(arrivals) if len(arrivals) > 1 else 0.0,
        "held_back_share": held,
    }


def idle_cpu(size: tuple[int, int] = (1280, 720), seconds: float = IDLE_S) -> dict:
    """The live demo offscreen at `size` before its first prompt, once at rest (render/rest.py):
    the CPU its process (drawing, llvmpipe's threads) and its model process (waiting) use, in
    cores, over `seconds`, and the frames it drew a second."""
    from visualizer.clock import RealClock
    from visualizer.gl.context import HeadlessTarget
    from visualizer.render.app import App
    from visualizer.render.rest import STILL_S
    from visualizer.sources.local import LocalSource

    settings = load_settings("default")
    target = HeadlessTarget(size, like_a_window=True)
    with LocalSource(settings) as stream:
        app = App(settings, target, stream, RealClock(), adaptive=True)
        end = time.perf_counter() + SETTLE_LIMIT_S + STILL_S
        while not (app.state == "ready" and app.pace.resting) and time.perf_counter() < end:
            app.frame()
        if not app.pace.resting:
            raise RuntimeError(f"the window never came to rest ({app.status})")
        cpu, start, frames = _cpu_s(stream.pid), time.perf_counter(), 0
        while time.perf_counter() - start < seconds:
            app.frame()
            frames += 1
        elapsed = time.perf_counter() - start
        used = _cpu_s(stream.pid) - cpu
        app.release()
    target.close()
    return {"idle_cpu_cores": used / elapsed, "idle_fps": frames / elapsed}


def _cpu_s(child: int) -> float:
    """CPU seconds used so far by this process (all its threads) and by `child`."""
    import psutil

    user, system = psutil.Process(child).cpu_times()[:2]
    return time.process_time() + user + system


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
