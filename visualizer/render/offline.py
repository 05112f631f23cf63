"""`neuroweb render` and `neuroweb snapshot`: a finished run drawn offline, as a video at a fixed
time step and a fixed token schedule (smooth and the same on every run however slow the
machine), or as one still image, the poster.

The run is played by a TracePlayer through the same App, and so the same per-frame pipeline,
as the live window: ingest and sound cue → advance → draw → capture. The schedule: the
prompt's frames arrive at once at 0 s (as in the live window), then one generated token every
1/token_rate s of video from LEAD_S on; the video ends TAIL_S after the last token. Nothing
here waits on a clock: video frame k shows time k/fps.
"""

import multiprocessing as mp
import os
import shutil
import signal
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass, replace
from multiprocessing.connection import Connection
from multiprocessing.connection import wait as connection_wait
from pathlib import Path

from msgspec import structs

from visualizer.architecture import Architecture, from_config
from visualizer.clock import FixedStepClock
from visualizer.config import Settings
from visualizer.frame import Frame
from visualizer.gl.context import HeadlessTarget
from visualizer.handoff import Status
from visualizer.paths import check_output
from visualizer.progress import counter
from visualizer.record.mux import join
from visualizer.record.recover import (
    FIRST_PART,
    is_held,
    part_name,
    parts_folder,
    recording_now,
    recover_earlier,
)
from visualizer.render.app import App
from visualizer.sources.player import TracePlayer, schedule

LEAD_S = 0.5
TAIL_S = 1.5
SETTLE_S = 2.0  # a poster lets every eased value reach its target first
MAX_PROCESSES = 2  # that draw one video (measured on 2 cores: docs/performance.md)
PART_MIN_S = 5.0  # of video per process at least: measured, an 8 s clip gained nothing
PART_EXIT_S = 30.0  # a stopped part finishes its file within this, or is killed
WARM_S = 1.0  # drawn before a part's first frame: what the flash limiter remembers


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

    def direct(self, app: App, k: int) -> None:
        """Before video frame k goes through the pipeline: what an edit does to the App then
        (a film's cuts, visualizer/film/cut.py); nothing for a plain run."""

    def finish(self, app: App) -> None:
        """After the App drew a part (or the whole) of the video and let its recording go."""


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


def processes_for(total: int, fps: int, asked: int) -> int:
    """How many processes draw a video of `total` frames: `asked` (at most one per frame), or
    with 0 one per core, at most MAX_PROCESSES, each drawing at least PART_MIN_S of it."""
    if asked:
        return max(1, min(asked, total))
    return max(1, min(MAX_PROCESSES, os.cpu_count() or 1, total // round(PART_MIN_S * fps)))


def render_video(
    run: Run,
    settings: Settings,
    out: Path,
    size: tuple[int, int],
    fps: int,
    timeline: tuple[list[float], int],
    sound: bool = True,
    processes: int = 0,
    alpha: bool = False,
    chrome: bool = False,
) -> Path:
    """Draw the frames to `out` (H.264 mp4, with the AAC soundtrack when `sound` and the preset
    allow) on `timeline` (paced or fitted: when each frame is due, and how many video frames);
    returns the finished file. `processes`: how many draw it, each a run of consecutive frames
    (0: processes_for's choice). Ctrl-C keeps what was drawn from the start as a shorter,
    playable video; any other failure leaves nothing. `alpha`: the picture without its
    background, with its alpha, as ProRes 4444 for a .mov `out`, else as a folder of PNGs at
    `out` (one process draws it). The picture is clean (what the run's notes say goes to the
    log), unless `chrome`: then with the operator's chrome, the REC label and notices."""
    audible = sound and settings.sound.enabled
    settings = structs.replace(settings, record=structs.replace(settings.record, fps=fps),
                               sound=structs.replace(settings.sound, enabled=audible))  # fmt: skip
    out = check_output(out, alpha)
    _clear_parts(parts_folder(out), out)
    parts = 1 if alpha else processes_for(timeline[1], fps, processes)
    if parts == 1:
        with counter("rendering", timeline[1], "frames") as drawn:
            return _draw_part(run, settings, out, size, timeline, 0, timeline[1],
                              lambda done: drawn.update(done - drawn.n), alpha=alpha,
                              chrome=chrome)  # fmt: skip
    return _draw_in_parts(run, settings, out, size, timeline, parts, chrome)


def _draw_part(
    run: Run,
    settings: Settings,
    out: Path,
    size: tuple[int, int],
    timeline: tuple[list[float], int],
    first: int,
    last: int,
    progress: Callable[[int], None],
    stopped: Callable[[], bool] = lambda: False,
    alpha: bool = False,
    chrome: bool = False,
) -> Path:
    """Video frames first..last-1 of the timeline to `out`, the soundtrack (if the settings
    have one) for the whole of it. The frames before `first` pass through the same pipeline
    undrawn, but for the last WARM_S of them: drawn, not recorded, so the flash limiter enters
    the part with the second of memory it would have had (safety/limiter.py). Past `last`,
    with a soundtrack, frames pass undrawn to its end. `progress(done)`: the frames of the part
    drawn so far, at every 10th and the last. `stopped()` True: as Ctrl-C. `alpha`: drawn
    without a background and recorded with its alpha; `chrome`: with the operator's chrome
    (render_video)."""
    times, total = timeline
    clock = FixedStepClock(settings.record.fps)
    target = HeadlessTarget(size)
    app = None
    warm = min(first, round(WARM_S * settings.record.fps))
    end = total if settings.sound.enabled else last
    try:
        app = App(settings, target, run.player(clock, times), clock, adaptive=False,
                  transparent=alpha, chrome="recorded" if chrome else "none")  # fmt: skip
        for k in range(end):
            if stopped():
                raise KeyboardInterrupt
            if k == first:
                app.record(out, strict=True)
            run.direct(app, k)
            app.frame(drawn=first - warm <= k < last)
            if k >= first and not app.recorder.active:
                break  # the encoder failed; its reason is below
            done = k + 1 - first
            if first <= k < last and (done % 10 == 0 or k == last - 1):
                progress(done)
    except KeyboardInterrupt as stop:
        if app is not None:
            app.release()  # keeps what was drawn
            stop.kept = app.recorder.last  # said by the command line
        raise
    except BaseException:
        if app is not None:
            app.recorder.abort()
            app.release()
        raise
    else:
        app.release()
        run.finish(app)
    finally:
        target.close()
    if app.recorder.last is None:
        raise RuntimeError(app.recorder.failed or "the recording failed")
    return app.recorder.last


def _draw_in_parts(run: Run, settings: Settings, out: Path, size: tuple[int, int],
                   timeline: tuple[list[float], int], parts: int, chrome: bool
                   ) -> Path:  # fmt: skip
    """Each part of the timeline drawn by a process of its own into a hidden folder beside
    `out`, the first with the whole soundtrack; then joined (the video copied, not encoded
    again). One process keeps about 1.1 of this project's 2 cores busy (moderngl holds the
    GIL, and llvmpipe's rasterizer waits on the one thread that feeds it): two draw more
    frames a second. The parts ignore the signals that stop a render, even sent to the whole
    process group; this process asks them to stop over their pipes and keeps the first part
    (the video from its start) as `out`."""
    folder = parts_folder(out)
    folder.mkdir()
    bounds = _bounds(timeline[1], parts, round(WARM_S * settings.record.fps))
    paths = [folder / part_name(i) for i in range(parts)]
    context = mp.get_context("spawn")
    pipes, processes = [], []
    try:
        for i in range(parts):
            mine, theirs = context.Pipe()
            audible = structs.replace(settings.sound, enabled=settings.sound.enabled and i == 0)
            process = context.Process(
                target=_part, name=f"neuroweb-part{i}", daemon=True,
                args=(theirs, run, structs.replace(settings, sound=audible), paths[i], size,
                      timeline, bounds[i], bounds[i + 1], chrome),
            )  # fmt: skip
            process.start()
            theirs.close()
            pipes.append(mine)
            processes.append(process)
        results = _follow(pipes, timeline[1])
        for result in results:
            if not isinstance(result, Path):
                raise RuntimeError(result)
        problem = join(paths, paths[0] if settings.sound.enabled else None, out)
        if problem:
            raise RuntimeError(f"recording {out} failed: {problem}")
    except KeyboardInterrupt as stop:
        for pipe in pipes:
            with suppress(OSError):
                pipe.send("stop")
        first = _result(pipes[0]) if pipes else None
        if isinstance(first, Path) and first.is_file():
            os.replace(first, out)
            stop.kept = out
        raise
    finally:
        for pipe, process in zip(pipes, processes, strict=True):
            with suppress(OSError):
                pipe.send("stop")
            process.join(PART_EXIT_S)
            if process.is_alive():
                process.kill()
            pipe.close()
        shutil.rmtree(folder, ignore_errors=True)
    return out


def _clear_parts(folder: Path, out: Path) -> None:
    """An earlier render to `out` in parts was cut short (a kill, a power cut): its video from
    the start is recovered first, never drawn over, as a recording's is (record/recover.py)."""
    first = folder / FIRST_PART
    if is_held(first):
        raise recording_now(out)
    if first.is_file():
        recover_earlier(first, out)
    shutil.rmtree(folder, ignore_errors=True)


def _bounds(total: int, parts: int, warm: int) -> list[int]:
    """Where the parts begin, and the end: every part but the first also draws `warm` frames
    before its own, so it gets that many fewer, and each process draws alike."""
    each = (total + (parts - 1) * warm) / parts
    starts = [0, *(min(total - 1, round(each + i * (each - warm))) for i in range(parts - 1))]
    return [*starts, total] if each > warm else [total * i // parts for i in range(parts + 1)]


def _follow(pipes: list[Connection], total: int) -> list[Path | str]:
    """The parts' results, saying the progress of them all meanwhile."""
    done, results = [0] * len(pipes), [None] * len(pipes)
    with counter("rendering", total, "frames") as drawn:
        while any(r is None for r in results):
            for pipe in connection_wait([p for p, r in zip(pipes, results, strict=True)
                                         if r is None], timeout=0.5):  # fmt: skip
                i = pipes.index(pipe)
                try:
                    kind, value = pipe.recv()
                except (EOFError, OSError):
                    kind, value = "result", f"the process drawing part {i + 1} died"
                if kind == "done":
                    done[i] = value
                    drawn.update(sum(done) - drawn.n)
                else:
                    results[i] = value
    return results


def _result(pipe: Connection) -> Path | str | None:
    """A stopped part's last word: its file (what was kept of it), or why not."""
    while True:
        try:
            kind, value = pipe.recv()
        except (EOFError, OSError):
            return None
        if kind == "result":
            return value


def _part(pipe: Connection, run: Run, settings: Settings, out: Path, size: tuple[int, int],
          timeline: tuple[list[float], int], first: int, last: int, chrome: bool
          ) -> None:  # fmt: skip
    """A part, in its own process: says its progress, then its file (what was kept of it if
    stopped) or why it failed (one line)."""
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):  # the parent's to handle
        signal.signal(sig, signal.SIG_IGN)

    def count(frames: int) -> None:
        pipe.send(("done", frames))

    try:
        result = _draw_part(run, settings, out, size, timeline, first, last, count, pipe.poll,
                            chrome=chrome)  # fmt: skip
    except KeyboardInterrupt as stopped:
        result = getattr(stopped, "kept", None) or "stopped"
    except Exception as exc:  # noqa: BLE001  said by the parent, in one line
        result = str(exc) or type(exc).__name__
    with suppress(OSError):
        pipe.send(("result", result))


def snapshot(run: Run, settings: Settings, out: Path, size: tuple[int, int]) -> Path:
    """The run's last moment as a PNG at `size`, in the preset's scene (`look.scene`)."""
    clock = FixedStepClock(settings.record.fps)
    target = HeadlessTarget((16, 16))  # the poster is drawn at `size` on its own
    try:
        app = App(settings, target, run.player(clock, [0.0] * len(run.frames)), clock,
                  adaptive=False, chrome="none")  # fmt: skip
        try:
            clock.tick()  # the first frame's time, when the player's frames are due
            app.take_all()
            app.scene.advance(SETTLE_S)
            app.poster(out, size)
        finally:
            app.release()
    finally:
        target.close()
    return out
