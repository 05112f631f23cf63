"""`neuroweb run`: the live window, or, with no display, a headless clip of the same demo.

The model process starts first (sources.model_first, before this module's imports) and imports
torch while the window opens (the first frame comes within a second); the loading screen shows
its progress.
"""

import sys
from contextlib import nullcontext
from pathlib import Path

from visualizer.clock import FixedStepClock, RealClock
from visualizer.config import PresetWatch, Settings
from visualizer.cues import Show
from visualizer.errors import UserError
from visualizer.gl.context import HeadlessTarget, WindowTarget, WindowUnavailable
from visualizer.render.app import App, ChromeShown
from visualizer.render.offline import Run, fitted, render_video, snapshot
from visualizer.render.operator_view import OperatorView
from visualizer.render.remote import Remote
from visualizer.render.renderer import save_png
from visualizer.sound.speakers import Speakers
from visualizer.sources import FrameSource
from visualizer.tracer import answer

DEMO_VIDEO = Path("neuroweb-demo.mp4")
DEMO_IMAGE = Path("neuroweb-demo.png")


def _finish(app: App) -> None:
    """A model that never loaded because of bad input ends the run with its one-line error."""
    if app.intake.refused:
        raise UserError(app.intake.user_failure)
    if app.intake.failure:
        raise RuntimeError(app.intake.failure)


def _report(saved: Path | None) -> None:
    if saved is not None:
        print(f"neuroweb: saved {saved}", file=sys.stderr)


def _in_window(target: WindowTarget, settings: Settings, source: FrameSource,
               prompt: str | None, record: Path | None, watch: PresetWatch | None,
               cues: Show | None, osc: tuple[str, int] | None, chrome: ChromeShown) -> int:
    """The app in the open window until it is closed (or stopped); `cues`: a talk's; `osc`:
    where its remote listens (the port is freed on every way out); `chrome`: where the
    operator's chrome is drawn; with `window.operator`, the operator's window beside it (closed
    on every way out too)."""
    speakers, silent_because = Speakers.open(settings.sound)
    talk = len(cues.cues) if cues is not None else 0
    w = settings.window
    operator = OperatorView(w.display, (w.width, w.height)) if w.operator else None
    try:
        with Remote(*osc, talk) if osc is not None else nullcontext() as remote:
            app = App(
                settings, target, source, RealClock(), adaptive=True, prompt=prompt,
                record_to=record, speakers=speakers, silent_because=silent_because,
                watch=watch, cues=cues, remote=remote, chrome=chrome, operator=operator,
            )  # fmt: skip
            try:
                app.run()
            except KeyboardInterrupt as stop:  # Ctrl-C, SIGTERM, SIGHUP: said by the caller
                app.release()
                stop.kept = app.recorder.last
                raise
            app.release()
        _report(app.recorder.last)
    finally:
        if operator is not None:
            operator.close()
        if speakers is not None:
            speakers.close()
        target.close()
    _finish(app)
    return 0


def run_headless(
    settings: Settings,
    source: FrameSource,
    prompt: str | None,
    frames: int,
    size: tuple[int, int],
    record: Path | None,
    screenshot: Path | None,
    chrome: ChromeShown = "none",
) -> int:
    """Render `frames` frames offscreen at a fixed step of 1/record.fps s; with `record`, to
    video; with `screenshot`, the last frame to a PNG; both clean unless `chrome` says
    "recorded"."""
    target = HeadlessTarget(size)
    try:
        clock = FixedStepClock(settings.record.fps)
        app = App(settings, target, source, clock, adaptive=False, prompt=prompt,
                  record_to=record, chrome=chrome)  # fmt: skip
        try:
            app.run(frames)
            clean = app.intake.failure is None and app.intake.user_failure is None
            if screenshot is not None and clean:
                try:
                    save_png(target.fbo, target.size, screenshot)
                except OSError as exc:
                    raise UserError(f"{screenshot}: cannot write: {exc.strerror}") from None
                _report(screenshot)
        except KeyboardInterrupt as stop:  # the recording is finalised: said by the caller
            app.release()
            stop.kept = app.recorder.last
            raise
        except BaseException:
            app.release()
            raise
        app.release()
        _report(app.recorder.last)
    finally:
        target.close()
    _finish(app)
    return 0


def demo_clip(settings: Settings, source: FrameSource, prompt: str, video: Path, image: Path,
              chrome: bool = False) -> int:  # fmt: skip
    """The demo without a display: the model answers first, then the answer is drawn unfolding
    over the whole clip (record.demo_frames at record.fps), token by token on a fixed schedule,
    with a short hold on the finished answer; the last moment also as a PNG. Clean, unless
    `chrome` (the REC label, the notices)."""
    builder, meta = answer(source, settings, prompt)
    run = Run.from_meta(builder.frames, meta)
    fps, w = settings.record.fps, settings.window
    size = (w.width, w.height)
    timeline = fitted(run.frames, fps, settings.record.demo_frames)
    _report(render_video(run, settings, video, size, fps, timeline, chrome=chrome))
    _report(snapshot(run, settings, image, size))
    return 0


def run_live(
    settings: Settings,
    source: FrameSource,
    prompt: str | None,
    record: Path | None,
    watch: PresetWatch | None = None,
    cues: Show | None = None,
    osc: tuple[str, int] | None = None,
    chrome: ChromeShown = "window",
) -> int:
    """The window (reloading the preset when `watch` sees it change; stepping through `cues`,
    a talk's, with the clicker's keys, and taking a remote's OSC messages on `osc`; `chrome`:
    where the operator's chrome is drawn); without a display, the demo clip and a PNG, from
    the same model process."""
    w = settings.window
    try:
        target = WindowTarget((w.width, w.height), w.fullscreen, w.vsync, "neuroweb", w.display)
    except WindowUnavailable as exc:
        print(f"{exc}: rendering a headless demo clip instead", file=sys.stderr)
    else:
        return _in_window(target, settings, source, prompt, record, watch, cues, osc, chrome)
    return demo_clip(settings, source, prompt or settings.record.demo_prompt,
                     record or DEMO_VIDEO, DEMO_IMAGE, chrome == "recorded")  # fmt: skip
