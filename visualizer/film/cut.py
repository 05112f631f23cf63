"""The director: a film's plan played through the App, the one per-frame pipeline of the window
and of `neuroweb render` (render/offline.py draws it, in parts on both cores).

An `Edit` is a Run whose `direct(app, k)` does what the plan's step k says before the App takes
video frame k through its pipeline: at a shot's first frame it sets the camera, the scene (the
neural web or the architecture) and the card; then it brings back a saved state (a stutter's
repeat, a rewind), saves the state, and shows the frames entering the scene (App.show, as a
source's frames enter), the road not taken, the word flash and the caption. Nothing is drawn
here: the App draws, its flash limiter included.
"""

import bisect
import copy
from dataclasses import dataclass, field
from pathlib import Path

from visualizer.clock import FixedStepClock
from visualizer.film.cards import Credits, FilmCards, card_lines
from visualizer.film.grammar import Plan, Shot, road_not_taken
from visualizer.frame import Frame
from visualizer.handoff import Status
from visualizer.render.app import App
from visualizer.render.offline import Run
from visualizer.sources.player import TracePlayer

HELD = ".held"  # a part's count of frames the limiter held back: PART.held in `held_to`


@dataclass(frozen=True)
class Edit(Run):
    runs: tuple[tuple[Frame, ...], ...] = ()
    prompts: tuple[str, ...] = ()  # each run's
    plan: Plan | None = None
    credits: Credits | None = None
    held_to: Path | None = None  # where each part says how many frames the limiter held back
    _state: dict = field(default_factory=dict, compare=False, repr=False)

    def player(self, clock: FixedStepClock, times: list[float]) -> TracePlayer:
        """The App's source: it only says what is playing (model, architecture); the frames
        enter through `direct`. It loops over nothing, so its state stays "generating"."""
        self._state.clear()
        status = Status("generating", model=self.model, architecture=self.architecture,
                        prompt=self.prompt)  # fmt: skip
        return TracePlayer((), (), lambda: clock.now, status, rest_s=1.0).start()

    def direct(self, app: App, k: int) -> None:
        s = self._state
        if "cards" not in s:
            self._begin(app)
        if app.recorder.active and "from" not in s:
            s["from"] = held_back(app)  # a part's warm-up is counted by the part before it
        shot = self.shot_at(k)
        if k == shot.start:
            self._cut(app, shot)
        step = self.plan.steps[k]
        if step.restore >= 0:
            scene, camera = self._copy(s["saved"][step.restore])
            app.scene = scene
            if step.restore >= shot.start:  # a stutter; a rewind keeps this shot's camera
                app.camera = camera
        if step.save and k in s["needed"]:
            s["saved"][k] = self._copy((app.scene, app.camera))
            for old in [j for j in s["saved"] if s["needed"][j] < k]:
                del s["saved"][old]
        shown = [(run, self.runs[run][t]) for run, t in step.show]
        if step.ghost is not None:
            run, t = step.ghost
            shown.append((run, road_not_taken(self.runs[run], t)))
        for run, frame in shown:
            app.show(frame)
            app.prompt_shown = self.prompts[run]
        app.glitch.flash, app.glitch.word = step.flash, step.word
        s["cards"].caption = step.caption

    def finish(self, app: App) -> None:
        """Say how many of its frames the limiter held back, in `held_to`."""
        if self.held_to is not None and app.recorder.last is not None:
            held = held_back(app)
            held = held - self._state.get("from", 0) if held >= 0 else held
            (self.held_to / f"{app.recorder.last.name}{HELD}").write_text(str(held))

    def shot_at(self, k: int) -> Shot:
        return self.plan.shots[bisect.bisect_right(self._state["starts"], k) - 1]

    def _begin(self, app: App) -> None:
        s = self._state
        s["cards"] = FilmCards.attach(app.looks.current)
        app.camera.direction = None  # the edit frames every shot itself
        s["starts"] = [shot.start for shot in self.plan.shots]
        s["saved"] = {}
        needed: dict[int, int] = {}  # a saved frame → the last frame that brings it back
        for k, step in enumerate(self.plan.steps):
            if step.restore >= 0:
                needed[step.restore] = k
        s["needed"] = needed
        frames = [f for run in self.runs for f in run]  # immutable: shared, never copied
        s["memo"] = {id(f): f for f in frames} | {id(app.scene.look): app.scene.look}

    def _cut(self, app: App, shot: Shot) -> None:
        camera = app.camera
        camera.yaw, camera.pitch, camera.distance, camera.height = shot.camera
        app.stage.target = app.stage.mix = shot.scene
        cards = self._state["cards"]
        cards.lines = card_lines(shot.card, self.credits) if shot.card else ()

    def _copy(self, state):
        return copy.deepcopy(state, dict(self._state["memo"]))


def held_back(app: App) -> int:
    """Frames in which the App's flash limiter held a change back; -1 without a limiter."""
    limiter = app.looks.current.limiter
    return limiter.held_back if limiter is not None else -1


def held_in(folder: Path) -> int:
    """The frames held back in all parts, as they said (-1: the limiter was off)."""
    counts = [int(p.read_text()) for p in sorted(folder.glob(f"*{HELD}"))]
    if any(c < 0 for c in counts):
        return -1
    return sum(counts)
