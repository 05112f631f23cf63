"""`neuroweb render`: a video at a fixed time step and a fixed token schedule, so it is smooth
and the same on every run however slow the machine.

The schedule: the prompt's frames arrive at once at 0 s (as in the live window), then one
generated token every 1/token_rate s of video from LEAD_S on; the video ends TAIL_S after the
last token. Nothing here waits on a clock: frame k is drawn for time k/fps.
"""

import sys
import time
from dataclasses import replace
from pathlib import Path

from visualizer.config import Settings
from visualizer.features import SceneState
from visualizer.frame import Frame
from visualizer.record.session import RecordingSession
from visualizer.render.camera import Camera
from visualizer.render.context import HeadlessTarget
from visualizer.render.layers.panels import Overlay
from visualizer.render.renderer import Renderer
from visualizer.sound.synth import Synth

LEAD_S = 0.5
TAIL_S = 1.5


def schedule(frames: list[Frame], token_rate: float) -> list[float]:
    """The video time at which each frame is shown."""
    times, generated = [], 0
    for frame in frames:
        if frame.is_prompt:
            times.append(0.0)
        else:
            times.append(LEAD_S + generated / token_rate)
            generated += 1
    return times


def video_frames(times: list[float], fps: int) -> int:
    return round((max(times, default=0.0) + TAIL_S) * fps)


def _progress(done: int, total: int, started: float) -> None:
    """One updating line on a terminal; a line per quarter in a log."""
    rate = done / max(time.perf_counter() - started, 1e-6)
    eta = (total - done) / max(rate, 1e-6)
    line = f"rendering {done}/{total} frames  {rate:5.1f} frames/s  ETA {eta:4.0f} s"
    if sys.stderr.isatty():
        print(f"\r\033[K{line}", end="\n" if done == total else "", file=sys.stderr, flush=True)
    elif done == total or done * 4 // total != (done - 10) * 4 // total:
        print(line, file=sys.stderr, flush=True)


def render_video(
    frames: list[Frame],
    settings: Settings,
    out: Path,
    size: tuple[int, int],
    fps: int,
    token_rate: float,
    model: str,
    prompt: str,
    sound: bool = True,
) -> Path:
    """Draw the frames to `out` (H.264 mp4, with the AAC soundtrack when `sound` and the preset
    allow); returns the finished file. Ctrl-C keeps what was drawn as a shorter, playable video;
    any other failure leaves nothing."""
    times = schedule(frames, token_rate)
    total = video_frames(times, fps)
    record = replace(settings.record, fps=fps)
    synth = Synth(settings.sound) if sound and settings.sound.enabled else None
    target = HeadlessTarget(size)
    renderer = None
    try:
        session = RecordingSession(target.ctx, out, size, record, False, 0.0, synth)
        renderer = Renderer(target.ctx, settings.look)
        try:
            _draw(frames, times, total, fps, target, renderer, session, settings, model, prompt)
        except KeyboardInterrupt:
            session.close()
            raise
        except BaseException:
            session.abort()
            raise
        saved = session.close()
    finally:
        if renderer is not None:
            renderer.release()
        target.close()
    if saved is None:
        raise RuntimeError(session.failed)
    return saved


def _draw(frames, times, total, fps, target, renderer, session, settings, model, prompt) -> None:
    """Frame k shows time k/fps: the frames due by then, eased for exactly 1/fps per step."""
    scene, camera = SceneState(settings.look), Camera(settings.look.drift_deg_s)
    layers = frames[0].attn.shape[0] if frames else 0
    shown, started = 0, time.perf_counter()
    for k in range(total):
        now = k / fps
        while shown < len(frames) and times[shown] <= now:
            scene.ingest(frames[shown])
            session.hear(frames[shown], now)
            shown += 1
        state = "generating" if shown < len(frames) else "finished"
        overlay = Overlay(state, "", 1.0, model, layers, prompt, None, False, None, (), (), ())
        renderer.draw(target.fbo, target.size, scene, overlay, camera, now)
        if session.capture(target.fbo, now):
            return  # the encoder failed; close() reports it
        scene.advance(1 / fps)
        camera.advance(1 / fps)
        if k % 10 == 9 or k == total - 1:
            _progress(k + 1, total, started)
