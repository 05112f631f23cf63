"""`neuroweb render` and `neuroweb snapshot`: a finished run drawn offline, as a video at a fixed
time step and a fixed token schedule (smooth and the same on every run however slow the
machine), or as one still image, the poster.

The run is played by a TracePlayer through the same App, and so the same per-frame pipeline,
as the live window: ingest and sound cue → advance → draw → capture. The schedule: the
prompt's frames arrive at once at 0 s (as in the live window), then one generated token every
1/token_rate s of video from LEAD_S on; the video ends TAIL_S after the last token. Nothing
here waits on a clock: video frame k shows time k/fps.
"""

import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

from visualizer.architecture import Architecture, from_config
from visualizer.clock import FixedStepClock
from visualizer.config import Settings
from visualizer.frame import Frame
from visualizer.handoff import Status
from visualizer.render.app import App
from visualizer.render.context import HeadlessTarget
from visualizer.sources.player import TracePlayer, schedule

LEAD_S = 0.5
TAIL_S = 1.5
SETTLE_S = 2.0  # a poster lets every eased value reach its target first


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
            arch = replace(arch, notes=notes)  # said on screen as the run starts
        return cls(frames, meta.get("model", ""), meta.get("prompt", ""), arch, notes)

    def player(self, clock: FixedStepClock, times: list[float]) -> TracePlayer:
        """Its frames at `times` on the video's timeline: video frame k, drawn at clock time
        (k+1)/fps (the first tick's), shows time k/fps."""
        status = Status("generating", model=self.model, architecture=self.architecture,
                        prompt=self.prompt)  # fmt: skip
        player = TracePlayer(self.frames, times, lambda: clock.now, status)
        return player.start(at=clock.now + clock.step)


def video_frames(times: list[float], fps: int) -> int:
    return round((max(times, default=0.0) + TAIL_S) * fps)


def paced(frames: list[Frame], fps: int, token_rate: float) -> tuple[list[float], int]:
    """`render`'s timeline: a token every 1/token_rate s from LEAD_S on, TAIL_S after the
    last; (when each frame is due, video frames)."""
    times = schedule(frames, token_rate, LEAD_S)
    return times, video_frames(times, fps)


def fitted(frames: list[Frame], fps: int, total: int) -> tuple[list[float], int]:
    """The demo clip's timeline: the answer spread evenly over `total` video frames, from a
    short lead to a short hold on the finished answer (both shorter in a very short clip)."""
    clip_s = total / fps
    lead_s, hold_s = min(LEAD_S, 0.1 * clip_s), min(TAIL_S, 0.25 * clip_s)
    gaps = max(1, sum(not f.is_prompt for f in frames) - 1)  # between generated tokens
    return schedule(frames, gaps / max(clip_s - lead_s - hold_s, 1 / fps), lead_s), total


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
    timeline: tuple[list[float], int],
    sound: bool = True,
) -> Path:
    """Draw the frames to `out` (H.264 mp4, with the AAC soundtrack when `sound` and the preset
    allow) on `timeline` (paced or fitted: when each frame is due, and how many video frames);
    returns the finished file. Ctrl-C keeps what was drawn as a shorter, playable video; any
    other failure leaves nothing."""
    times, total = timeline
    audible = sound and settings.sound.enabled
    settings = replace(settings, record=replace(settings.record, fps=fps),
                       sound=replace(settings.sound, enabled=audible))  # fmt: skip
    clock = FixedStepClock(fps)
    target = HeadlessTarget(size)
    app = None
    try:
        app = App(settings, target, run.player(clock, times), clock, adaptive=False,
                  record_to=out)  # fmt: skip
        started = time.perf_counter()
        for k in range(total):
            app.frame()
            if not app.is_recording:
                break  # the encoder failed; its reason is below
            if k % 10 == 9 or k == total - 1:
                _progress(k + 1, total, started)
    except KeyboardInterrupt as stop:
        if app is not None:
            app.release()  # keeps what was drawn
            stop.kept = app.last_recording  # said by the command line
        raise
    except BaseException:
        if app is not None:
            app.abort_recording()
            app.release()
        raise
    else:
        app.release()
    finally:
        target.close()
    if app.last_recording is None:
        raise RuntimeError(app.recording_failed or "the recording failed")
    return app.last_recording


def snapshot(run: Run, settings: Settings, out: Path, size: tuple[int, int]) -> Path:
    """The run's last moment as a PNG at `size`, in the preset's scene (`look.scene`)."""
    clock = FixedStepClock(settings.record.fps)
    target = HeadlessTarget((16, 16))  # the poster is drawn at `size` on its own
    try:
        app = App(settings, target, run.player(clock, [0.0] * len(run.frames)), clock,
                  adaptive=False)  # fmt: skip
        try:
            clock.tick()  # the first frame's time, when the player's frames are due
            app.take_all()
            app.settle(SETTLE_S)
            app.poster(out, size)
        finally:
            app.release()
    finally:
        target.close()
    return out
