"""`neuroweb render` and `neuroweb snapshot`: a finished run drawn offline, as a video at a fixed
time step and a fixed token schedule (smooth and the same on every run however slow the
machine), or as one still image, the poster.

The schedule: the prompt's frames arrive at once at 0 s (as in the live window), then one
generated token every 1/token_rate s of video from LEAD_S on; the video ends TAIL_S after the
last token. Nothing here waits on a clock: frame k is drawn for time k/fps.
"""

import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

from visualizer.architecture import Architecture, from_config
from visualizer.config import SCENES, Settings
from visualizer.features import SceneState
from visualizer.frame import Frame
from visualizer.record.session import RecordingSession
from visualizer.render.camera import Camera
from visualizer.render.context import HeadlessTarget
from visualizer.render.glitch import Glitch
from visualizer.render.layers.panels import Overlay
from visualizer.render.renderer import Renderer, save_png
from visualizer.sound.synth import Synth

LEAD_S = 0.5
TAIL_S = 1.5
SETTLE_S = 2.0  # a poster lets every eased value reach its target first
NOTICE_S = 5.0  # a run's notes are shown for its first seconds, as the live window does


@dataclass(frozen=True)
class Run:
    """A finished answer to draw: its frames, and what produced them."""

    frames: list[Frame]
    model: str
    prompt: str
    architecture: Architecture | None  # None for a trace without the model's config
    notes: tuple[str, ...] = ()  # what the run could not do exactly: shown as it starts

    @classmethod
    def from_meta(cls, frames: list[Frame], meta: dict) -> "Run":
        """From a trace's (or `run_model`'s) description of the run."""
        described, config = meta.get("architecture"), meta.get("model_config")
        name = meta.get("model", "")
        arch = (Architecture.from_json(described) if described
                else from_config(config, name) if config else None)  # fmt: skip
        notes = tuple(str(n) for n in meta.get("notes", ()))
        if arch is not None:  # a trace of another version may lack some of them
            notes = tuple(dict.fromkeys((*arch.notes, *notes)))
        return cls(frames, meta.get("model", ""), meta.get("prompt", ""), arch, notes)

    def overlay(self, state: str, settings: Settings) -> Overlay:
        layers = self.frames[0].attn.shape[0] if self.frames else 0
        return Overlay(state, "", 1.0, self.model, layers, self.prompt, None, False, None, (),
                       (), (), self.architecture, float(SCENES.index(settings.look.scene)),
                       interactive=False)  # fmt: skip


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
    run: Run,
    settings: Settings,
    out: Path,
    size: tuple[int, int],
    fps: int,
    token_rate: float,
    sound: bool = True,
) -> Path:
    """Draw the frames to `out` (H.264 mp4, with the AAC soundtrack when `sound` and the preset
    allow); returns the finished file. Ctrl-C keeps what was drawn as a shorter, playable video;
    any other failure leaves nothing."""
    times = schedule(run.frames, token_rate)
    total = video_frames(times, fps)
    record = replace(settings.record, fps=fps)
    synth = Synth(settings.sound) if sound and settings.sound.enabled else None
    target = HeadlessTarget(size)
    renderer = None
    try:
        session = RecordingSession(target.ctx, out, size, record, False, 0.0, synth)
        renderer = Renderer(target.ctx, settings.look, settings.safety.flash_limit)
        try:
            _draw(run, times, total, fps, target, renderer, session, settings)
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


def _draw(run, times, total, fps, target, renderer, session, settings) -> None:
    """Frame k shows time k/fps: the frames due by then, eased for exactly 1/fps per step."""
    scene, camera = SceneState(settings.look), Camera(settings.look.drift_deg_s)
    glitch = Glitch(settings.look.glitch)
    frames = run.frames
    shown, started = 0, time.perf_counter()
    for k in range(total):
        now = k / fps
        while shown < len(frames) and times[shown] <= now:
            scene.ingest(frames[shown])
            session.hear(frames[shown], now)
            shown += 1
        step = glitch.step(scene, camera, 1 / fps)
        overlay = replace(run.overlay("generating" if shown < len(frames) else "finished",
                                      settings), flash=glitch.flash, flash_word=glitch.word,
                          split=glitch.split,
                          notices=run.notes if now < NOTICE_S else ())  # fmt: skip
        renderer.draw(target.fbo, target.size, scene, overlay, camera, now)
        if session.capture(target.fbo, now):
            return  # the encoder failed; close() reports it
        scene.advance(step)
        camera.advance(1 / fps)
        if k % 10 == 9 or k == total - 1:
            _progress(k + 1, total, started)


def snapshot(run: Run, settings: Settings, out: Path, size: tuple[int, int]) -> Path:
    """The run's last moment as a PNG at `size`, in the preset's scene (`look.scene`)."""
    scene, camera = SceneState(settings.look), Camera(settings.look.drift_deg_s)
    for frame in run.frames:
        scene.ingest(frame)
    scene.advance(SETTLE_S)
    target = HeadlessTarget(size)
    try:
        renderer = Renderer(target.ctx, settings.look, limit_flashes=False)  # a still image
        try:
            renderer.draw(target.fbo, size, scene, run.overlay("finished", settings), camera,
                          SETTLE_S)  # fmt: skip
            save_png(target.fbo, size, out)
        finally:
            renderer.release()
    finally:
        target.close()
    return out
