"""The overlay the panels draw over the scene each frame: what the source is doing, notices for a
few seconds, errors, the interventions panel, and with H the HUD's numbers. Whatever is shown
on screen is written to the log too (the kiosk's); a shader error once, when it appears. A
clean picture (`run --clean`, offline renders) shows none of the operator's: its notices and
errors are written to the `neuroweb.notices` logger instead (stderr), never lost."""

import logging
from dataclasses import replace
from pathlib import Path

from visualizer.architecture import Architecture
from visualizer.clock import FixedStepClock, RealClock
from visualizer.features import SceneState
from visualizer.handoff import Failure
from visualizer.logs import NOTICES
from visualizer.render.controls import Controls
from visualizer.render.glitch import Glitch
from visualizer.render.governor import Governor
from visualizer.render.intake import PENDING_LIMIT, Intake
from visualizer.render.layers.layer import Overlay
from visualizer.render.passes import PassTimes
from visualizer.render.renderer import Renderer

NOTICE_S = 5.0
NOTICES_SHOWN = 3


def for_poster(overlay: Overlay) -> Overlay:
    """The overlay of a poster: without the prompt box, HUD or messages."""
    return replace(overlay, typing=None, paused=False, recording=None, hud=(), notices=(),
                   errors=(), blackout=0.0)  # fmt: skip


def paused_line(intake: Intake) -> str:
    """The operator's notice while an answer is paused: how to go on, and what the pause
    could not hold (the audience's title says only "paused")."""
    line = "paused: → one token, Space goes on"
    if intake.paused_dropped:
        line += f" (held the newest {PENDING_LIMIT:,}, dropped {intake.paused_dropped:,})"
    return line


def _intervene_line(shown: tuple[str, ...], wanted: tuple[str, ...]) -> str:
    """The small interventions panel: what the frames on screen were changed by (their own
    record of it), and what the next token will be, when that differs."""
    line = f"changed: {', '.join(shown)}" if shown else ""
    if tuple(wanted) != tuple(shown) and (wanted or shown):
        line += ("   ·   " if line else "") + (
            f"from the next token: {', '.join(wanted) or 'nothing changed'}")  # fmt: skip
    return line


class Hud:
    def __init__(self, clock: RealClock | FixedStepClock, target, controls: Controls,
                 governor: Governor, passes: PassTimes, glitch: Glitch,
                 log: logging.Logger | None, shown: bool = True) -> None:  # fmt: skip
        """`log`: where what is shown is written too (the kiosk's); `shown`: False for a clean
        picture, whose notices and errors go to `log`, or else the NOTICES logger."""
        self.clock, self.target, self.controls, self.shown = clock, target, controls, shown
        self.log = log if log is not None or shown else logging.getLogger(NOTICES)
        self.said = "on screen: " if shown else ""  # before each line written to the log
        self.governor, self.passes, self.glitch = governor, passes, glitch
        self.on = False  # the H key: the HUD's numbers are shown
        self.notices: list[tuple[float, str]] = []  # (shown until, text), oldest first
        self._errors_logged: dict[str, str] = {}  # shader errors on screen, already logged

    def notify(self, text: str) -> None:
        """A line on screen for NOTICE_S seconds (unless the picture is clean), and in the log
        if there is one."""
        self.notices.append((self.clock.now + NOTICE_S, text))
        if self.log is not None:
            self.log.info("%s%s", self.said, text)

    def failed(self, failure: Failure) -> None:
        """The source failed: bad input is said as a notice; a bug stays in the errors panel
        (see overlay) and goes to the log."""
        if failure.user_error:
            self.notify(failure.message)
        elif self.log is not None:
            self.log.error("%s%s", self.said, failure.message)

    def log_shader_errors(self, errors: dict[str, str]) -> None:
        """A shader error shown on screen goes to the log too: once, when it appears (it stays
        on screen, every frame, until its file compiles again)."""
        if self.log is not None:
            for name, error in errors.items():
                if self._errors_logged.get(name) != error:
                    self.log.error("%sshader %s: %s", self.said, name, error)
        self._errors_logged = dict(errors)

    def overlay(self, intake: Intake, scene: SceneState, renderer: Renderer, *, prompt: str,
                recording: Path | None, architecture: Architecture | None, scene_mix: float,
                lens: bool, blackout: float = 0.0) -> Overlay:  # fmt: skip
        """What the panels show this frame. `prompt`: the prompt of the answer on screen;
        `recording`: the file being recorded; `blackout`: how far faded to black (0..1). A
        clean picture's has nothing of the operator's (no typing, REC, HUD, notices, errors)."""
        now = self.clock.now
        self.notices = [(t, text) for t, text in self.notices if t > now]
        errors = tuple(renderer.shaders.errors.values())
        if intake.failure:
            errors += (intake.failure,)
        status = intake.status
        overlay = Overlay(
            state=status.state,
            message=status.message,
            progress=status.progress,
            model=intake.model_name,
            layers=max(scene.rows - 1, 0),
            prompt=prompt,
            typing=self.controls.typing(intake.idle),
            paused=intake.paused,
            paused_dropped=intake.paused_dropped,
            recording=str(recording) if recording is not None else None,
            hud=self.lines(intake, scene, renderer) if self.on else (),
            notices=tuple(text for _, text in self.notices[-NOTICES_SHOWN:])
            + ((paused_line(intake),) if intake.paused else ()),
            errors=errors,
            architecture=architecture,
            scene_mix=scene_mix,
            interactive=self.target.interactive and not self.controls.locked,
            flash=self.glitch.flash,
            flash_word=self.glitch.word,
            split=self.glitch.split,
            replay=intake.replaying,
            lens=lens,
            blackout=blackout * blackout * (3 - 2 * blackout),  # eased in and out
            intervene=_intervene_line(scene.changed, intake.interventions.specs),
        )
        if not self.shown:
            return replace(overlay, typing=None, recording=None, hud=(), notices=(), errors=(),
                           interactive=False)  # fmt: skip
        return overlay

    def lines(self, intake: Intake, scene: SceneState, renderer: Renderer) -> tuple[str, ...]:
        """The HUD: frame rate and times, tok/s, the model, render scale, the costliest passes."""
        fps, median_ms, p99_ms = self.governor.stats()
        w, h = self.target.size
        return (
            f"{fps:5.1f} fps   frame {median_ms:.1f} ms   p99 {p99_ms:.1f} ms",
            f"{intake.rate()}   dropped {intake.dropped}",
            f"model {intake.model_name or '…'}   {max(scene.rows - 1, 0)} layers",
            f"render scale {self.governor.scale:.2f} of {w}×{h}   detail "
            f"{self.governor.detail:.1f}",
            f"next prompt: temperature {intake.gen.temperature:.1f}   "
            f"panel draws {renderer.painter.draws}",
            *self._pass_lines(),
        )

    def _pass_lines(self) -> list[str]:
        """The costliest passes, three to a line (see render/passes.py)."""
        medians = [f"{name} {ms:.1f}" for name, ms in self.passes.medians().items()]
        lines = ["   ".join(medians[i : i + 3]) for i in range(0, len(medians), 3)]
        return ["passes, ms: " + line for line in lines[:1]] + lines[1:3] if lines else []
