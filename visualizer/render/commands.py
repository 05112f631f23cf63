"""The commands the app takes, by name: one table, the one dispatcher. The keys (controls.py
maps each to a name) give commands as `Command(name, value)`, and each name runs the same
function here on the app; a talk's cue runs as these same commands (`cue`), and so does a
remote's message (render/remote.py). Some are given by name only, by a cue or a remote:
`preset`, `intervene`, `tokens`, `play`, `go`, `recording`.

A command reaches into the app only through what `Commanded` lists.
"""

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import moderngl
import pygame
from msgspec import structs

from visualizer.architecture import Architecture
from visualizer.config import SCENES, Settings, load_settings
from visualizer.cues import Show
from visualizer.errors import UserError
from visualizer.features import SceneState
from visualizer.frame import Frame
from visualizer.interventions import Ablation, Interventions, interventions_from
from visualizer.render.camera import Camera
from visualizer.render.controls import Command
from visualizer.render.hud import Hud
from visualizer.render.intake import Intake
from visualizer.render.recording import RecordingController
from visualizer.render.stage import Stage
from visualizer.sound.speakers import Speakers
from visualizer.sources.cued import TraceInFront
from visualizer.trace import frames_from_trace, read_trace


class Commanded(Protocol):
    """The app (render/app.py), as far as commands reach into it."""

    running: bool
    settings: Settings
    target: Any  # a window or a headless target
    camera: Camera
    scene: SceneState
    intake: Intake
    hud: Hud
    recorder: RecordingController
    speakers: Speakers | None
    silent_because: str
    stage: Stage
    lens_shown: bool
    architecture: Architecture | None
    block: int
    cues: Show | None

    def show(self, frame: Frame) -> None: ...
    def apply(self, settings: Settings) -> None: ...
    def record(self, path: Path, strict: bool = False) -> None: ...
    def poster(self, path: Path, size: tuple[int, int]) -> None: ...


log = logging.getLogger("neuroweb.show")  # the cues, for the speaker's terminal


def _named(kind: str, value: object) -> Path:
    """The file a command writes: `value` if it names one, else a timestamped one here."""
    if value is not None:
        return Path(value)
    return Path(f"neuroweb-{time.strftime('%Y%m%d-%H%M%S')}.{kind}").resolve()


def quit_app(app: Commanded, _: object) -> None:
    app.running = False


def pause(app: Commanded, _: object) -> None:
    app.intake.toggle_pause()


def step(app: Commanded, _: object) -> None:
    """Pause, or while paused show the next token."""
    frame = app.intake.step()
    if frame is not None:
        app.show(frame)


def temperature(app: Commanded, change: float) -> None:
    gen = app.intake.gen
    value = round(min(2.0, max(0.0, gen.temperature + change)), 2)
    app.intake.gen = structs.replace(gen, temperature=value)
    app.hud.notify(f"temperature {value:.1f} (from the next prompt)")


def fullscreen(app: Commanded, _: object) -> None:
    if hasattr(app.target, "toggle_fullscreen"):  # a window, not a headless target
        app.recorder.stop("the window changed size")
        app.target.toggle_fullscreen()


def hud(app: Commanded, _: object) -> None:
    app.hud.on = not app.hud.on


def scene(app: Commanded, index: int) -> None:
    """Crossfade to a scene: 0 the neural web, 1 the architecture."""
    app.stage.show(SCENES[index])
    app.hud.notify(f"scene: {SCENES[index]}")


def lens(app: Commanded, _: object) -> None:
    app.lens_shown = not app.lens_shown
    app.hud.notify(f"logit lens {'on' if app.lens_shown else 'off'}")


def block(app: Commanded, change: int) -> None:
    """Choose the block the intervention keys act on."""
    blocks = app.architecture.blocks if app.architecture else 1
    app.block = min(max(app.block + change, 0), blocks - 1)
    app.hud.notify(f"block {app.block}: K switches its MLP, J its attention")


def _intervene(app: Commanded, interventions: Interventions) -> None:
    """What the model changes, from the next token of the answer in progress (and for the
    answers after it); said on screen."""
    try:
        app.intake.intervene(interventions)
    except UserError as exc:  # a recorded run
        app.hud.notify(str(exc))
        return
    said = ", ".join(interventions.specs) or "nothing"
    app.hud.notify(f"changed: {said} (from the next token)")


def ablate(app: Commanded, part: str) -> None:
    """Switch a part ("mlp" or "attn") of the chosen block off, or back on."""
    _intervene(app, app.intake.interventions.toggled(Ablation(part, app.block)))


def steer(app: Commanded, _: object) -> None:
    """The preset's steering off if it is on, on if it is off."""
    now = app.intake.interventions
    if now.steering:
        _intervene(app, Interventions(now.ablations, ()))
        return
    preset = interventions_from((), app.settings.intervene.steer).steering
    if not preset:
        app.hud.notify("no steering in the preset ([intervene] steer, or --steer)")
    _intervene(app, Interventions(now.ablations, preset))


def mute(app: Commanded, _: object) -> None:
    if app.speakers is None:
        app.hud.notify(app.silent_because or "no sound")
    else:
        app.hud.notify("sound muted" if app.speakers.toggle_mute() else "sound on")


def screenshot(app: Commanded, path: object) -> None:
    """The scene on screen as a poster, at record.poster_* pixels, into `path` (None: a
    timestamped file here); a problem is said on screen."""
    path, r = _named("png", path), app.settings.record
    try:
        app.poster(path, (r.poster_width, r.poster_height))
        app.hud.notify(f"saved {path}")
    except (OSError, ValueError, moderngl.Error, pygame.error) as exc:
        app.hud.notify(f"poster failed: {exc}")


def record(app: Commanded, path: object) -> None:
    """Start recording into `path` (None: a timestamped file here), or stop."""
    if app.recorder.active:
        app.recorder.stop()
    else:
        app.record(_named("mp4", path))


def recording(app: Commanded, on: bool) -> None:
    """Start recording (a timestamped file here), or stop; nothing if it is so already (a
    remote's /neuroweb/record)."""
    if on != app.recorder.active:
        record(app, None)


def generate(app: Commanded, prompt: str) -> None:
    """A new prompt: the screen leaves what it held of the last answer, and the model starts."""
    app.intake.resume_afresh()
    app.intake.generate(prompt)


def blackout(app: Commanded, on: bool | None) -> None:
    """Fade the picture to black, or back (None: whichever it is not); the model, the sound and
    a recording go on. Drawn by render/layers/blackout.py, eased by the app."""
    app.stage.blackout = not app.stage.blackout if on is None else bool(on)


def preset(app: Commanded, name: str) -> None:
    """The look, sound and sampling of a preset (a name in configs/ or a .toml path); the model
    stays the one loaded. A preset that does not load is said on screen and changes nothing."""
    try:
        settings = load_settings(name)
    except UserError as exc:
        app.hud.notify(str(exc))
        return
    app.apply(structs.replace(settings, model=app.settings.model))


def intervene(app: Commanded, interventions: Interventions) -> None:
    """What the model changes, all of it at once (a cue's `ablate` and `steer`, a remote's
    /neuroweb/ablate); a block or head the loaded model lacks is said, and changes nothing."""
    if app.architecture is not None:
        try:
            interventions.check(app.architecture.blocks, app.architecture.heads)
        except UserError as exc:
            log.warning("%s", exc)
            app.hud.notify(str(exc))
            return
    if interventions != app.intake.interventions:
        _intervene(app, interventions)


def play(app: Commanded, path: str) -> None:
    """Play a saved run (a trace's .npz) in a talk, in place of the model's answer; the next
    prompt is the model's again. A file that does not read is said on screen."""
    source = app.intake.source
    if not isinstance(source, TraceInFront):
        app.hud.notify("a trace is played only in a talk (run --cues)")
        return
    try:
        trace = read_trace(Path(path))
    except UserError as exc:
        app.hud.notify(str(exc))
        return
    app.intake.resume_afresh()
    source.play(frames_from_trace(trace), str(trace.meta.get("prompt", "")))


def tokens(app: Commanded, count: int) -> None:
    """How many tokens the next answers have."""
    app.intake.gen = structs.replace(app.intake.gen, max_tokens=count)


def cue(app: Commanded, step: int) -> None:
    """The next cue (+1) or the previous one (-1) of the talk; the show goes on if it was left."""
    if app.cues is not None:
        app.cues.on = True
        _run_cue(app, app.cues.index + step, again=False)


def go(app: Commanded, number: int) -> None:
    """Cue `number` of the talk (from 1, as the terminal counts them; a remote's
    /neuroweb/cue); at it already, nothing. The show goes on if it was left."""
    if app.cues is not None:
        app.cues.on = True
        _run_cue(app, number - 1, again=False)


def show(app: Commanded, start: bool) -> None:
    """Start the talk's show at its first cue (F5), or leave it (Esc): the keys are as without
    a cue list until it starts again, and Esc quits."""
    if app.cues is None:
        return
    app.cues.on = start
    if start:
        _run_cue(app, 0, again=True)
    else:
        log.info("left the show: Esc again quits, F5 starts it again, PageDown goes on")


def begin_show(app: Commanded) -> None:
    """A talk's cue list on a new app: the stage before its first cue is the run's own, and
    the speaker's terminal says how to start."""
    app.cues.begin(app.settings)
    log.info("%s: %d cues; PageDown or F5 starts the show", app.cues.path, len(app.cues.cues))


def check_cues(app: Commanded) -> None:
    """A cue that changes a block or head the loaded model lacks: said once, as it loads."""
    try:
        app.cues.check(app.architecture.blocks, app.architecture.heads)
    except UserError as exc:
        log.warning("%s", exc)
        app.hud.notify(str(exc))


def _run_cue(app: Commanded, index: int, again: bool) -> None:
    """Show cue `index` (the stage as the cues up to it set it), through the commands above;
    its number, heading and note go to the speaker's terminal, never onto the picture.
    `again`: run it even if the show is on it already."""
    cues = app.cues
    if cues.move(index) is None and not again:
        return
    stage = cues.at(cues.index)
    note = cues.cues[cues.index].note.strip().replace("\n", "\n    ")
    log.info("cue %d/%d: %s%s", cues.index + 1, len(cues.cues), stage.heading,
             f"\n    {note}" if note else "")  # fmt: skip
    given = [("preset", stage.preset), ("tokens", stage.tokens),
             ("intervene", stage.interventions),
             ("scene", SCENES.index(stage.scene) if stage.scene else None),
             ("lens", None if stage.lens in (None, app.lens_shown) else stage.lens),
             ("camera", stage.camera),
             ("generate", stage.prompt),
             ("play", str(cues.trace_path(stage)) if stage.trace else None)]  # fmt: skip
    for name, value in given:
        if value is not None:
            execute(app, Command(name, value))


def camera(app: Commanded, framing: str) -> None:
    """Where the camera looks (a cue's `camera`): "wide", "answer" or "block N", eased there and
    held (render/direction.py); "wide" lets a camera that directs itself go on doing so."""
    arch = app.architecture  # a recorded run's blocks where no model has said its own
    app.camera.frame(framing, arch.blocks if arch is not None else max(app.scene.rows - 1, 0))


def orbit(app: Commanded, rel: tuple[float, float]) -> None:
    app.camera.drag(*rel)


def zoom(app: Commanded, steps: float) -> None:
    app.camera.zoom(steps)


Action = Callable[[Commanded, Any], None]  # (the app, the command's value)

COMMANDS: dict[str, Action] = {
    "quit": quit_app, "pause": pause, "step": step, "temperature": temperature,
    "fullscreen": fullscreen, "hud": hud, "scene": scene, "lens": lens, "block": block,
    "ablate": ablate, "steer": steer, "mute": mute, "screenshot": screenshot, "record": record,
    "generate": generate, "orbit": orbit, "zoom": zoom, "blackout": blackout, "cue": cue,
    "show": show, "preset": preset, "intervene": intervene, "tokens": tokens, "play": play,
    "go": go, "recording": recording, "camera": camera,
}  # fmt: skip


def execute(app: Commanded, command: Command) -> None:
    """Run `command` on `app`; a name not in COMMANDS is refused (UserError)."""
    action = COMMANDS.get(command.name)
    if action is None:
        raise UserError(f"no command {command.name!r}; the commands are {', '.join(COMMANDS)}")
    action(app, command.value)
