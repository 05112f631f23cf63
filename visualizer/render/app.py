"""The render loop, one per-frame pipeline for the window, headless runs, offline renders and the
kiosk: events → frames from the source → ingest and sound cue → advance → draw → capture →
present.

Frames enter only through the App's FrameSource (a model process, a model server, a recorded
run). The loop never waits on the model: it takes whatever frames have arrived (often none)
and draws. Only a headless run with nothing to show yet (the model still loading) waits
briefly on its source, so an offline clip does not fill up with loading frames.
"""

import logging
import time
from collections import OrderedDict, deque
from dataclasses import replace
from pathlib import Path

import moderngl
import pygame
from msgspec import structs

from visualizer.architecture import Architecture
from visualizer.clock import FixedStepClock, RealClock
from visualizer.config import SCENES, PresetWatch, Settings
from visualizer.errors import UserError
from visualizer.features import SceneState
from visualizer.frame import Frame
from visualizer.gl.context import is_software
from visualizer.handoff import Batch, Status
from visualizer.interventions import Ablation, Interventions, interventions_from
from visualizer.record.session import RecordingSession
from visualizer.render.camera import Camera
from visualizer.render.controls import Command, Controls
from visualizer.render.glitch import Glitch
from visualizer.render.governor import Governor
from visualizer.render.layers.panels import PENDING_LIMIT, Overlay, loading_screen
from visualizer.render.passes import PassTimes
from visualizer.render.renderer import Renderer, render_poster
from visualizer.sound.speakers import Speakers
from visualizer.sound.synth import Synth
from visualizer.sources import FrameSource

NOTICE_S = 5.0
CROSSFADE_S = 0.6  # switching scenes
LOOK_FADE_S = 2.0  # a soft cut between looks (a kiosk's rotation, a reloaded preset)
RENDERERS_KEPT = 4  # looks whose renderers stay built
POLL_S = 0.5  # shader and preset files are checked this often
HEADLESS_LOADING_WAIT_S = 0.25
PASS_SAMPLE = 8  # with the HUD on, one frame in this many is timed pass by pass
LOADING_FPS = 20  # the frame cap over the loading screen, on a CPU renderer (see frame_cap_now)


def timestamp() -> str:
    return time.strftime("%Y%m%d-%H%M%S")


class App:
    def __init__(
        self,
        settings: Settings,
        target,
        source: FrameSource,
        clock: RealClock | FixedStepClock,
        adaptive: bool,
        prompt: str | None = None,
        record_to: Path | None = None,
        speakers: Speakers | None = None,
        silent_because: str = "",
        watch: PresetWatch | None = None,
        controls: Controls | None = None,
        log: logging.Logger | None = None,
    ) -> None:
        """`speakers`: the live sound, if any; `silent_because`: why not, shown on screen;
        `watch`: the preset to reload when its file changes; `controls`: locked ones for a
        kiosk; `log`: where every notice shown on screen is also written (the kiosk's log)."""
        self.settings, self.target, self.source, self.clock = settings, target, source, clock
        self.speakers, self.silent_because, self.watch = speakers, silent_because, watch
        self.log = log
        self.gen = settings.generation
        self.scene = SceneState(settings.look)
        self.camera = Camera(settings.look.drift_deg_s)
        self.glitch = Glitch(settings.look.glitch)
        w = settings.window
        software = is_software(target.ctx) and isinstance(clock, RealClock)
        self.frame_cap = w.software_fps if software else 0  # frames per second; 0 = none
        fps = min(w.target_fps, self.frame_cap) if self.frame_cap else w.target_fps
        self.governor = Governor(fps, w.min_scale, w.max_scale, adaptive)
        self.passes = PassTimes(target.ctx)  # measured while the HUD shows them
        self.renderer = Renderer(target.ctx, settings.look, settings.safety.flash_limit,
                                 self.passes)  # fmt: skip
        # renderers of recent looks, kept: a kiosk turning between a few presets reuses them
        # (building one costs a shader compile, and some memory that is not given back)
        self._renderers = OrderedDict({(settings.look, settings.safety): self.renderer})
        self._leaving: Renderer | None = None  # the look fading out, and how much is left
        self._leaving_weight = 0.0
        self.controls = controls or Controls()
        self.status = Status("starting")
        self.pending: deque[Frame] = deque(maxlen=PENDING_LIMIT)
        self.arrivals: deque[float] = deque(maxlen=256)  # when generated tokens arrived
        self.dropped = 0
        self.paused = False
        self.paused_dropped = 0  # frames beyond PENDING_LIMIT that a pause could not hold
        self.hud = False
        self.frames = 0
        self.running = True
        self.prompt_shown = ""  # above the answer on screen: its prompt, once it begins
        self._prompt = ""  # the prompt of the answer the source is on (its status says)
        self.request = 0
        self.notices: list[tuple[float, str]] = []
        self.replaying = False  # the scene shows an earlier answer again (the kiosk's replay)
        self.recorded = False  # the scene shows a recorded run (a trace), not a model's tokens
        self._errors_logged: dict[str, str] = {}  # shader errors on screen, already logged
        self.failure: str | None = None
        self.user_failure: str | None = None
        self.recording: RecordingSession | None = None
        self.last_recording: Path | None = None
        self.recording_failed: str | None = None  # why the last recording failed
        self.model_name = ""
        self.architecture: Architecture | None = None  # the loaded model's, from its source
        self.scene_target = float(SCENES.index(settings.look.scene))  # 0 web, 1 architecture
        self.scene_mix = self.scene_target  # shown: eases toward the target
        self.lens_shown = settings.look.lens
        iv = settings.intervene
        self.interventions = interventions_from(iv.ablate, iv.steer)  # for the next answer
        self.block = 0  # the block the intervention keys act on ([ and ])
        self._next_poll = 0.0
        if silent_because:
            self.notify(silent_because)
        if prompt is not None:
            self.generate(prompt)
        if record_to is not None:  # asked for on the command line: a bad path is an error
            self.record_to(record_to)

    # --- the loop -------------------------------------------------------------------------

    def run(self, frames: int | None = None) -> None:
        """Draw until quit (or `frames` frames). The recording is finalised on every exit
        (Esc, window close, Ctrl-C), except when the model failed on bad input in a headless
        run: then nothing is kept."""
        try:
            count = 0
            while self.running and (frames is None or count < frames):
                self.frame()
                count += 1
        finally:
            if self.recording is not None and self.refused:
                self.recording.abort()
                self.recording = None
            self.stop_recording()

    def frame(self, drawn: bool = True) -> None:
        """One frame of the per-frame pipeline. `drawn` False: everything but the drawing (and
        its readback): a segment of a video rendered in parts catches up to its first frame
        this way, and the part that holds the soundtrack plays on past its last."""
        start = time.perf_counter()
        self.frames += 1
        # pass by pass, while the HUD shows it, one frame in PASS_SAMPLE: the others (and the
        # governor, which skips the measured ones) keep the overlap of Python and rasterizing
        self.passes.enabled = self.hud and self.frames % PASS_SAMPLE == 0
        dt = self.clock.tick()
        for event in self.target.events():
            for command in self.controls.handle(event, self.idle):
                self.execute(command)
        self.receive()
        self.reveal()
        self.play()
        self.scene.advance(self.glitch.step(self.scene, self.camera, dt))
        self.camera.advance(dt)
        step = dt / CROSSFADE_S
        self.scene_mix = min(max(self.scene_target, self.scene_mix - step), self.scene_mix + step)
        self._leaving_weight = max(0.0, self._leaving_weight - dt / LOOK_FADE_S)
        self.poll_files()
        if not drawn:
            if self.recording is not None:
                self.recording.pass_over(self.clock.wall)
            return
        self.renderer.draw(
            self.target.fbo, self.target.size, self.scene, self.overlay(), self.camera,
            self.clock.now, self.governor.scale, self.governor.detail,
            fade_from=self._leaving, fade=self._leaving_weight,  # a weight of 0: no fade
        )  # fmt: skip
        if self.recording is not None:
            with self.passes.measure("recording"):
                problem = self.recording.capture(self.target.fbo, self.clock.wall)
            if problem:
                self.stop_recording(problem)
        with self.passes.measure("present"):
            self.target.present()
        if not self.passes.enabled:
            self.governor.record(time.perf_counter() - start)
        if self.frame_cap:  # a CPU renderer without vsync: sleep out the rest of the frame
            time.sleep(max(0.0, 1 / self.frame_cap_now() - (time.perf_counter() - start)))

    def frame_cap_now(self) -> int:
        """The frame cap, lowered to LOADING_FPS while the loading screen is all there is to
        show: the model process is importing torch and loading on the same cores, and every
        frame of its slow dots and drift would take CPU time from it (in an Xvfb window on two
        cores, a cap of 10 rather than 60 brought the first word on screen 0.5 s sooner)."""
        if loading_screen(self.status.state, self.scene.rows):
            return min(self.frame_cap, LOADING_FPS)
        return self.frame_cap

    # --- model side -----------------------------------------------------------------------

    @property
    def idle(self) -> bool:
        """Nothing being generated or waiting to be shown: typed text goes to the prompt box."""
        generating = self.status.state == "generating" or self.status.request < self.request
        return not generating and not self.pending and self.status.state != "starting"

    @property
    def refused(self) -> bool:
        """The model never loaded because of bad input (a missing model, a non-model folder)."""
        return bool(self.user_failure) and not self.model_name

    @property
    def making_video(self) -> bool:
        """A headless run nobody watches or drives: it waits for the model and ends with it.
        A kiosk (locked controls), even headless as in the soak, does neither: it draws on
        (its attract loop plays) and is healed instead."""
        return not self.target.interactive and not self.controls.locked

    def restart_source(self, why: str) -> None:
        """Heal the source (a fresh model process, a fresh connection): the screen starts over
        with the loading scene while it loads."""
        self.source.restart(why)
        self.pending.clear()
        self.scene = SceneState(self.settings.look)
        self.status = Status("starting")
        self.model_name = ""
        self.request = 0
        self.failure = self.user_failure = None

    def generate(self, prompt: str) -> None:
        self.request = self.source.generate(prompt, self.gen, interventions=self.interventions)
        self.failure = self.user_failure = None

    def intervene(self, interventions: Interventions) -> None:
        """What the model changes, from the next token of the answer in progress (and for the
        answers after it)."""
        self.interventions = interventions
        try:
            self.source.intervene(interventions)
        except UserError as exc:  # a recorded run
            self.notify(str(exc))
            return
        said = ", ".join(interventions.specs) or "nothing"
        self.notify(f"changed: {said} (from the next token)")

    # --- what a kiosk or a soak asks of it (they drive the app from outside) ----------------

    @property
    def state(self) -> str:
        """The source's state: "starting", "loading", "ready", "generating", "finished" …"""
        return self.status.state

    @property
    def tokens_seen(self) -> int:
        return self.scene.tokens_seen

    @property
    def trouble(self) -> str | None:
        """Why the source needs healing (it failed, or it died), or None."""
        if self.failure:
            return self.failure
        if self.source.alive:
            return None
        why = self.user_failure  # what it said as it stopped (a refused token, say)
        return f"{self.source.name} stopped: {why}" if why else f"{self.source.name} died"

    def ask(self, prompt: str, max_tokens: int | None = None) -> None:
        """A new answer, of at most `max_tokens` tokens (the preset's otherwise)."""
        if max_tokens is not None:
            self.gen = structs.replace(self.settings.generation, max_tokens=max_tokens)
        self.generate(prompt)

    def take_refusal(self) -> str | None:
        """The last prompt the model refused (bad input), once."""
        refusal, self.user_failure = self.user_failure, None
        return refusal

    def show_scene(self, name: str) -> None:
        """Crossfade to a scene ("web" or "architecture")."""
        self.scene_target = float(SCENES.index(name))

    @property
    def has_sound(self) -> bool:
        return self.speakers is not None

    def use_speakers(self, speakers: Speakers) -> None:
        """A sound device found again: the sound comes back with the next frame."""
        speakers.synth.settings = self.settings.sound  # the look may have changed since
        self.speakers = speakers

    @property
    def recording_encoder_pid(self) -> int | None:
        return self.recording.encoder_pid if self.recording is not None else None

    def receive(self) -> None:
        # a video waits for the model's first frames instead of spinning
        waiting = self.making_video and self.scene.tokens_seen == 0 and not self.pending
        batch: Batch = self.source.drain(HEADLESS_LOADING_WAIT_S if waiting else 0.0)
        now = time.perf_counter()
        self.status = batch.status
        self._prompt = batch.status.prompt
        if batch.frames:
            self.replaying, self.recorded = batch.replay, batch.recorded
        self.model_name = batch.status.model or self.model_name
        described = batch.status.architecture
        if described is not None and described is not self.architecture:
            if described != self.architecture:  # a model newly loaded, not a new status
                for note in described.notes:  # what it cannot show exactly: said once
                    self.notify(note)
            self.architecture = described
            if described.width:
                self.scene.rest(described.blocks, described.width)
        self.dropped += batch.dropped
        overflow = len(self.pending) + len(batch.frames) - PENDING_LIMIT
        self.paused_dropped += max(0, overflow)  # held the newest; said on screen
        self.pending.extend(batch.frames)
        if not (batch.replay or batch.recorded):  # tok/s: the model's own tokens only
            self.arrivals.extend(now for f in batch.frames if not f.is_prompt)
        if batch.failure is not None:
            if batch.failure.user_error:
                self.user_failure = batch.failure.message
                self.notify(batch.failure.message)
            else:
                self.failure = batch.failure.message
                if self.log is not None:
                    self.log.error("on screen: %s", self.failure)
            if self.making_video:
                self.running = False  # nobody to read it on screen: end the run

    def reveal(self) -> None:
        """Move arrived frames into the scene: all of them, or none while paused."""
        if self.paused:
            return
        while self.pending:
            self.show(self.pending.popleft())

    def play(self) -> None:
        """Feed the speakers; a sound device that fails (unplugged, say) is let go, and the
        demo goes on silent (a kiosk tries to open it again)."""
        if self.speakers is None:
            return
        try:
            self.speakers.pump()
        except pygame.error as exc:
            self.silent_because = f"the sound stopped: {exc}"
            self.notify(self.silent_because)
            self.speakers.close()
            self.speakers = None

    def show(self, frame: Frame) -> None:
        """`frame` enters the scene: it is seen, heard, and recorded from this moment."""
        if self.scene.begins_answer(frame):
            self.prompt_shown = self._prompt
        self.scene.ingest(frame)
        if self.speakers is not None:
            self.speakers.cue(frame)
        if self.recording is not None:
            self.recording.hear(frame, self.clock.wall)

    def tokens_per_second(self) -> float:
        """The model's generated tokens per second, as they arrived over the last 3 s (frames
        played again or from a recorded run are not counted)."""
        now = time.perf_counter()
        recent = [t for t in self.arrivals if now - t < 3.0]
        if len(recent) < 2:
            return 0.0
        return (len(recent) - 1) / max(recent[-1] - recent[0], 1e-6)

    # --- commands -------------------------------------------------------------------------

    def execute(self, command: Command) -> None:
        name = command.name
        if name == "quit":
            self.running = False
        elif name == "pause":
            self.paused = not self.paused
            self.paused_dropped = 0
        elif name == "step":
            if not self.paused:
                self.paused = True
            elif self.pending:
                self.show(self.pending.popleft())
        elif name == "temperature":
            value = round(min(2.0, max(0.0, self.gen.temperature + command.value)), 2)
            self.gen = structs.replace(self.gen, temperature=value)
            self.notify(f"temperature {value:.1f} (from the next prompt)")
        elif name == "fullscreen" and hasattr(self.target, "toggle_fullscreen"):
            self.stop_recording("the window changed size")
            self.target.toggle_fullscreen()
        elif name == "hud":
            self.hud = not self.hud
        elif name == "scene":
            self.scene_target = float(command.value)
            self.notify(f"scene: {SCENES[command.value]}")
        elif name == "lens":
            self.lens_shown = not self.lens_shown
            self.notify(f"logit lens {'on' if self.lens_shown else 'off'}")
        elif name == "block":
            blocks = self.architecture.blocks if self.architecture else 1
            self.block = min(max(self.block + command.value, 0), blocks - 1)
            self.notify(f"block {self.block}: K switches its MLP, J its attention")
        elif name == "ablate":
            self.intervene(self.interventions.toggled(Ablation(command.value, self.block)))
        elif name == "steer":
            self.intervene(self._toggled_steering())
        elif name == "mute":
            if self.speakers is None:
                self.notify(self.silent_because or "no sound")
            else:
                self.notify("sound muted" if self.speakers.toggle_mute() else "sound on")
        elif name == "screenshot":
            self.screenshot(Path(f"neuroweb-{timestamp()}.png").resolve())
        elif name == "record":
            if self.recording is None:
                self.start_recording(Path(f"neuroweb-{timestamp()}.mp4").resolve())
            else:
                self.stop_recording()
        elif name == "generate":
            self.paused = False
            self.pending.clear()
            self.generate(command.value)
        elif name == "orbit":
            self.camera.drag(*command.value)
        elif name == "zoom":
            self.camera.zoom(command.value)

    def _toggled_steering(self) -> Interventions:
        """The preset's steering off if it is on, on if it is off."""
        if self.interventions.steering:
            return Interventions(self.interventions.ablations, ())
        preset = interventions_from((), self.settings.intervene.steer).steering
        if not preset:
            self.notify("no steering in the preset ([intervene] steer, or --steer)")
        return Interventions(self.interventions.ablations, preset)

    def notify(self, text: str) -> None:
        """A line on screen for a few seconds, and in the log if there is one."""
        self.notices.append((self.clock.now + NOTICE_S, text))
        if self.log is not None:
            self.log.info("on screen: %s", text)

    def screenshot(self, path: Path) -> None:
        """The S key: the scene on screen as a poster, at record.poster_* pixels; a problem is
        shown on screen."""
        r = self.settings.record
        try:
            self.poster(path, (r.poster_width, r.poster_height))
            self.notify(f"saved {path}")
        except (OSError, ValueError, moderngl.Error, pygame.error) as exc:
            self.notify(f"poster failed: {exc}")

    def poster(self, path: Path, size: tuple[int, int]) -> None:
        """The scene as a PNG at `size` and full render scale, without the prompt box, HUD or
        messages (`neuroweb snapshot`, the S key)."""
        clean = replace(self.overlay(), typing=None, paused=False, recording=None, hud=(),
                        notices=(), errors=())  # fmt: skip
        render_poster(self.renderer, size, self.scene, clean, self.camera, self.clock.now, path)

    def take_all(self) -> None:
        """Every frame the source has ready enters the scene now (a poster of a finished run)."""
        self.receive()
        self.reveal()

    def settle(self, seconds: float) -> None:
        """Let every eased value move toward its target for `seconds`, without drawing."""
        self.scene.advance(seconds)

    def _start_recording(self, path: Path) -> RecordingSession:
        """The soundtrack continues the speakers' synth, or starts one of its own."""
        synth = None
        if self.speakers is not None:
            synth = self.speakers.synth.fork()
        elif self.settings.sound.enabled:
            synth = Synth(self.settings.sound)
        realtime = isinstance(self.clock, RealClock)
        # a fixed-step recording's first video frame is the next one drawn, a step from now
        start = self.clock.wall + (0.0 if realtime else self.clock.step)
        session = RecordingSession(
            self.target.ctx, path, self.target.size, self.settings.record,
            realtime=realtime, now=start, synth=synth,
        )  # fmt: skip
        if not self.making_video:  # a video does not show its own file name
            self.notify(f"recording {path}")
        return session

    def record_to(self, path: Path) -> None:
        """Record from the next frame on; a bad path raises UserError."""
        self.recording = self._start_recording(path)

    def start_recording(self, path: Path) -> None:
        """The R key: a problem is shown on screen, the demo goes on."""
        try:
            self.recording = self._start_recording(path)
        except UserError as exc:
            self.notify(str(exc))

    @property
    def is_recording(self) -> bool:
        return self.recording is not None

    def stop_recording(self, reason: str = "") -> None:
        if self.recording is None:
            return
        recording, self.recording = self.recording, None
        saved = recording.close()
        because = f" ({reason})" if reason else ""
        if saved is not None:
            self.notify(f"saved {saved}{because}")
        else:
            self.recording_failed = recording.failed
            self.notify(f"recording failed: {recording.failed}")
        self.last_recording = saved

    def abort_recording(self) -> None:
        """Stop the recording and keep nothing of it (a render that failed)."""
        if self.recording is not None:
            self.recording.abort()
            self.recording = None

    # --- what the panels show -------------------------------------------------------------

    def overlay(self) -> Overlay:
        now = self.clock.now
        self.notices = [(t, text) for t, text in self.notices if t > now]
        errors = tuple(self.renderer.shaders.errors.values())
        if self.failure:
            errors += (self.failure,)
        status = self.status
        return Overlay(
            state=status.state,
            message=status.message,
            progress=status.progress,
            model=self.model_name,
            layers=max(self.scene.rows - 1, 0),
            prompt=self.prompt_shown,
            typing=self.controls.typing(self.idle),
            paused=self.paused,
            paused_dropped=self.paused_dropped,
            recording=str(self.recording.path) if self.recording else None,
            hud=self.hud_lines() if self.hud else (),
            notices=tuple(text for _, text in self.notices[-3:]),
            errors=errors,
            architecture=self.architecture,
            scene_mix=self.scene_mix,
            interactive=self.target.interactive and not self.controls.locked,
            flash=self.glitch.flash,
            flash_word=self.glitch.word,
            split=self.glitch.split,
            replay=self.replaying,
            lens=self.lens_shown,
            intervene=self._intervene_line(),
        )

    def _intervene_line(self) -> str:
        """The small interventions panel: what the frames on screen were changed by (their own
        record of it), and what the next token will be, when that differs."""
        shown, wanted = self.scene.changed, self.interventions.specs
        line = f"changed: {', '.join(shown)}" if shown else ""
        if tuple(wanted) != tuple(shown) and (wanted or shown):
            line += ("   ·   " if line else "") + (
                f"from the next token: {', '.join(wanted) or 'nothing changed'}")  # fmt: skip
        return line

    def hud_lines(self) -> tuple[str, ...]:
        fps, median_ms, p99_ms = self.governor.stats()
        w, h = self.target.size
        return (
            f"{fps:5.1f} fps   frame {median_ms:.1f} ms   p99 {p99_ms:.1f} ms",
            f"{self._rate()}   dropped {self.dropped}",
            f"model {self.model_name or '…'}   {max(self.scene.rows - 1, 0)} layers",
            f"render scale {self.governor.scale:.2f} of {w}×{h}   detail "
            f"{self.governor.detail:.1f}",
            f"next prompt: temperature {self.gen.temperature:.1f}   "
            f"panel draws {self.renderer.painter.draws}",
            *self._pass_lines(),
        )

    def _rate(self) -> str:
        """tok/s of the model, or what the frames on screen are instead."""
        if self.replaying:
            return "replay (no model tokens: no tok/s)"
        if self.recorded:
            return "recorded run (no model tokens: no tok/s)"
        return f"{self.tokens_per_second():5.1f} tok/s"

    def _pass_lines(self) -> list[str]:
        """The costliest passes, three to a line (see render/passes.py)."""
        medians = [f"{name} {ms:.1f}" for name, ms in self.passes.medians().items()]
        lines = ["   ".join(medians[i : i + 3]) for i in range(0, len(medians), 3)]
        return ["passes, ms: " + line for line in lines[:1]] + lines[1:3] if lines else []

    def poll_files(self, now_or_never: bool = False) -> None:
        """Shaders and the preset, twice a second (`now_or_never`: at once): artists tune them
        while it runs."""
        now = time.perf_counter()
        if now < self._next_poll and not now_or_never:
            return
        self._next_poll = now + POLL_S
        for name in self.renderer.shaders.reload_changed():
            self.notify(f"reloaded shaders/{name}.glsl")
        self._log_shader_errors()
        if self.watch is not None:
            try:
                settings = self.watch.changed()
            except UserError as exc:  # a bad edit: say where, keep what runs
                self.notify(str(exc))
                return
            if settings is not None:
                self.apply(settings)
                self.notify(f"reloaded {self.watch.path.name}")

    def _log_shader_errors(self) -> None:
        """A shader error shown on screen goes to the log too: once, when it appears (it stays
        on screen, every frame, until its file compiles again)."""
        errors = self.renderer.shaders.errors
        if self.log is not None:
            for name, error in errors.items():
                if self._errors_logged.get(name) != error:
                    self.log.error("on screen: shader %s: %s", name, error)
        self._errors_logged = dict(errors)

    def apply(self, settings: Settings) -> None:
        """New settings while running: the look (its renderer), sound levels, the scene, the
        flash limit, and generation from the next prompt. Window size needs a restart."""
        old = self.settings
        self.settings = settings
        self.gen = settings.generation
        self.scene.look = settings.look
        self.glitch.amount = settings.look.glitch
        if (settings.look, settings.safety) != (old.look, old.safety):
            self._leaving, self._leaving_weight = self.renderer, 1.0
            self.renderer = self._renderer_for(settings)
        if settings.look.scene != old.look.scene:
            self.scene_target = float(SCENES.index(settings.look.scene))
        if self.speakers is not None:
            self.speakers.synth.settings = settings.sound

    def _renderer_for(self, settings: Settings) -> Renderer:
        """The renderer of this look: a kept one, or a new one (the oldest kept is let go)."""
        key = (settings.look, settings.safety)
        renderer = self._renderers.pop(key, None)
        if renderer is None:
            renderer = Renderer(self.target.ctx, settings.look, settings.safety.flash_limit,
                                self.passes)  # fmt: skip
        self._renderers[key] = renderer
        while len(self._renderers) > RENDERERS_KEPT:
            _, gone = self._renderers.popitem(last=False)
            if gone is self._leaving:
                self._leaving, self._leaving_weight = None, 0.0
            gone.release()
        return renderer

    def release(self) -> None:
        self.stop_recording()
        for renderer in self._renderers.values():
            renderer.release()
        self._renderers.clear()
