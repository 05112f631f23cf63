"""`neuroweb render`: a video at a fixed time step and a fixed token schedule, so it is smooth
and the same on every run however slow the machine.

The schedule: the prompt's frames arrive at once at 0 s (as in the live window), then one
generated token every 1/token_rate s of video from LEAD_S on; the video ends TAIL_S after the
last token. Nothing here waits on a clock: frame k is drawn for time k/fps.
"""

import sys
import time
from pathlib import Path

from visualizer.clock import FixedStepClock
from visualizer.config import Settings
from visualizer.features import SceneState
from visualizer.frame import Frame
from visualizer.record.ffmpeg import FrameGrabber, Recorder
from visualizer.render.camera import Camera
from visualizer.render.context import HeadlessTarget
from visualizer.render.layers.panels import Overlay
from visualizer.render.renderer import Renderer

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
) -> Path:
    """Draw the frames to `out` (H.264 mp4); returns the finished file."""
    times = schedule(frames, token_rate)
    total = video_frames(times, fps)
    recorder = Recorder(out, size, fps, settings.record.crf, settings.record.speed)
    target = HeadlessTarget(size)
    renderer = Renderer(target.ctx, settings.look)
    grabber = FrameGrabber(target.ctx, size)
    scene, camera, clock = SceneState(settings.look), Camera(settings.look.drift_deg_s), \
        FixedStepClock(fps)  # fmt: skip
    layers = frames[0].attn.shape[0] if frames else 0
    recorder.start()
    shown, started = 0, time.perf_counter()
    try:
        for k in range(total):
            now = k / fps
            while shown < len(frames) and times[shown] <= now:
                scene.ingest(frames[shown])
                shown += 1
            state = "generating" if shown < len(frames) else "finished"
            overlay = Overlay(state, "", 1.0, model, layers, prompt, None, False, None, (), (),
                              ())  # fmt: skip
            renderer.draw(target.fbo, size, scene, overlay, camera, now)
            grabbed = grabber.grab(target.fbo)
            if grabbed is not None and not recorder.write(grabbed):
                break
            dt = clock.tick()
            scene.advance(dt)
            camera.advance(dt)
            if k % 10 == 9 or k == total - 1:
                _progress(k + 1, total, started)
    except KeyboardInterrupt:  # keep what was rendered: a shorter, playable video
        _finish(grabber, recorder)
        raise
    except BaseException:
        recorder.abort()
        raise
    else:
        _finish(grabber, recorder)
    finally:
        grabber.release()
        renderer.release()
        target.close()
    if recorder.failed:
        raise RuntimeError(recorder.failed)
    return out


def _finish(grabber: FrameGrabber, recorder: Recorder) -> None:
    for grabbed in grabber.flush():
        if not recorder.write(grabbed):
            break
    recorder.close()
