"""The render loop, one per-frame pipeline for the window, headless runs, offline renders and the
kiosk: events → frames from the source → ingest and sound cue → advance → draw → capture →
present.

Frames enter only through the App's FrameSource (a model process, a model server, a recorded
run). The loop never waits on the model: it takes whatever frames have arrived (often none)
and draws. Only a headless run with nothing to show yet (the model still loading) waits
briefly on its source, so an offline clip does not fill up with loading frames.

The App sequences, and holds the state its parts share; each job is a module beside it: the
source and its queue (intake.py), commands by name (commands.py), recording (recording.py), the
overlay and HUD (hud.py), the looks' renderers (looks.py), the crossfade and blackout
(stage.py), a headless video's wait for the model (video_pace.py).

Two pictures come out of one frame, drawn once: the audience's (the scene and the answer), which
a recording takes, and over it the operator's chrome (REC, the prompt box, the HUD, notices),
drawn after the recording took the frame (`chrome`: where the operator's chrome is shown).
"""

import logging
import time
from pathlib import Path
from typing import Literal

import pygame
from msgspec import structs

from visualizer.architecture import Architecture
from visualizer.clock import FixedStepClock, RealClock
from visualizer.config import PresetWatch, Settings
from visualizer.cues import Show
from visualizer.features import SceneState
from visualizer.frame import Frame
from visualizer.gl.context import is_software
from visualizer.handoff import Batch, Status
from visualizer.render import commands
from visualizer.render.camera import Camera
from visualizer.render.controls import Command, Controls
from visualizer.render.glitch import Glitch
from visualizer.render.governor import Governor
from visualizer.render.hud import Hud, for_poster
from visualizer.render.intake import Intake
from visualizer.render.layers.chrome import loading_screen
from visualizer.render.layers.layer import Overlay
from visualizer.render.looks import Looks
from visualizer.render.operator_view import OperatorView
from visualizer.render.passes import PassTimes
from visualizer.render.recording import RecordingController
from visualizer.render.remote import Remote
from visualizer.render.renderer import render_poster
from visualizer.render.rest import Pace
from visualizer.render.stage import Stage
from visualizer.render.video_pace import VideoPace
from visualizer.sound.speakers import Speakers
from visualizer.sources import FrameSource
from visualizer.sources.cued import TraceInFront

PASS_SAMPLE = 8  # with the HUD on, one frame in this many is timed pass by pass
# where the operator's chrome is drawn: "window" on the target only, never in a recording (the
# window); "none": nowhere, its notices and errors written to the log (run --clean, offline
# renders); "recorded": on the target and in recordings, a screen capture (--chrome)
ChromeShown = Literal["none", "window", "recorded"]


class App:
    def __init__(self, settings: Settings, target, source: FrameSource,
                 clock: RealClock | FixedStepClock, adaptive: bool, prompt: str | None = None,
                 record_to: Path | None = None, speakers: Speakers | None = None,
                 silent_because: str = "", watch: PresetWatch | None = None,
                 controls: Controls | None = None,
                 log: logging.Logger | None = None, cues: Show | None = None,
                 remote: Remote | None = None, transparent: bool = False,
                 chrome: ChromeShown = "window", operator: OperatorView | None = None,
                 ) -> None:  # fmt: skip
        """`speakers`: the live sound, if any; `silent_because`: why not, shown on screen;
        `watch`: the preset to reload when its file changes; `controls`: locked ones for a
        kiosk; `log`: where every notice shown on screen is also written (the kiosk's log);
        `cues`: a talk's cue list, its show waiting for the clicker's first PageDown;
        `remote`: OSC messages, taken as commands each frame as the keys are; `transparent`:
        an alpha render's, drawn without a background and recorded with its alpha; `chrome`:
        where the operator's chrome is drawn (ChromeShown); `operator`: the operator's window,
        sent what is shown, its keys taken as this window's."""
        if cues is not None:  # a cue may play a saved run in front of the model
            source = TraceInFront(source, lambda: clock.now)
        self.settings, self.target, self.source, self.clock = settings, target, source, clock
        self.speakers, self.silent_because = speakers, silent_because
        self.scene = SceneState(settings.look)
        self.camera = Camera(settings.look.drift_deg_s, settings.venue.directed_camera)
        self.glitch = Glitch(settings.look.glitch)
        w = settings.window
        live = isinstance(clock, RealClock)
        frame_cap = w.software_fps if is_software(target.ctx) and live else 0  # 0: none
        self.pace = Pace(frame_cap, rests=live and target.interactive)
        fps = min(w.target_fps, frame_cap) if frame_cap else w.target_fps
        self.governor = Governor(fps, w.min_scale, w.max_scale, adaptive)
        self.passes = PassTimes(target.ctx)  # measured while the HUD shows them
        self.controls = controls or Controls()
        self.remote, self.operator = remote, operator
        self.intake = Intake(source, settings)
        self.chrome = chrome
        self.hud = Hud(clock, target, self.controls, self.governor, self.passes, self.glitch, log,
                       shown=chrome != "none")  # fmt: skip
        self.looks = Looks(target.ctx, settings, self.passes, self.hud, watch, transparent)
        self.recorder = RecordingController(target, clock, self.hud.notify, alpha=transparent)
        self.frames, self.running = 0, True
        self.video = VideoPace(clock)
        self.prompt_shown = ""  # above the answer on screen: its prompt, once it begins
        self.architecture: Architecture | None = None  # the loaded model's, from its source
        self.stage = Stage(settings.look.scene)  # the crossfade between scenes, the blackout
        self.lens_shown = settings.look.lens
        self.block = 0  # the block the intervention keys act on ([ and ])
        self.cues = self.controls.show = cues
        if cues is not None:
            commands.begin_show(self)
        if silent_because:
            self.hud.notify(silent_because)
        if prompt is not None:
            self.intake.generate(prompt)
        if record_to is not None:  # asked for on the command line: a bad path is an error
            self.record(record_to, strict=True)
        if settings.record.stream:
            self.recorder.stream(settings.record.stream, settings, speakers)

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
            if self.intake.refused:
                self.recorder.abort()
            self.recorder.stop(ending=True)

    def frame(self, drawn: bool = True) -> None:
        """One frame of the per-frame pipeline. `drawn` False: everything but the drawing (and
        its readback): a segment of a video rendered in parts catches up to its first frame
        this way, and the part that holds the soundtrack plays on past its last."""
        start = time.perf_counter()
        self.frames += 1
        # pass by pass, while the HUD shows it, one frame in PASS_SAMPLE: the others (and the
        # governor, which skips the measured ones) keep the overlap of Python and rasterizing
        self.passes.enabled = self.hud.on and self.hud.shown and self.frames % PASS_SAMPLE == 0
        dt = self.clock.tick()
        events = self.target.events() + (self.operator.events() if self.operator else [])
        for event in events:
            for command in self.controls.handle(event, self.idle):
                self.execute(command)
        remote = self.remote.take() if self.remote is not None else ()
        for command in remote:
            self.execute(command)
        if events or remote:
            self.pace.stir()
        self.take_all()
        self.play()
        if not self._still():
            self.pace.stir()
        self.scene.advance(self.glitch.step(self.scene, self.camera, dt))
        self.camera.advance(dt, self.pace.sway)
        self.stage.advance(dt)
        self.looks.advance(dt)
        self.poll_files()
        if not drawn:
            self.recorder.pass_over()
            return
        self.looks.draw(self.target.fbo, self.target.size, self.scene, self.overlay(),
                        self.camera, self.clock.now, self.governor.scale, self.governor.detail,
                        operator=self.chrome == "recorded")  # fmt: skip
        if self.recorder.capturing:
            with self.passes.measure("recording"):
                self.recorder.capture(self.target.fbo)
        if self.operator is not None:
            self.operator.publish(self, self.target.fbo)
        if self.chrome == "window":  # the recording took the picture without it
            self.looks.operator(self.target.fbo)
        with self.passes.measure("present"):
            self.target.present()
        if not self.passes.enabled:
            self.governor.record(time.perf_counter() - start)
        self.pace.sleep_out(start, self.loading, self._news)

    @property
    def loading(self) -> bool:
        """The loading screen is all there is to show."""
        return loading_screen(self.status.state, self.scene.rows)

    def _still(self) -> bool:
        """Nothing moves but what may at rest (render/rest.py): no answer running (or it is
        paused), no recording, no crossfade or blackout fading, the camera still."""
        return (not self.recorder.capturing and (self.intake.idle or self.intake.paused)
                and self.stage.still and self.camera.still and not self.loading)  # fmt: skip

    def _news(self, wait: float) -> bool:
        """At rest: input or a remote command waiting, or from the source (waiting up to
        `wait` for it) a frame to show, a failure or another state. The speakers are fed here
        too: a chunk lasts 43 ms, less than a frame at rest."""
        self.play()
        if any(x is not None and x.waiting() for x in (self.target, self.remote, self.operator)):
            return True
        state = self.state
        batch = self.intake.receive(wait)
        self.take(batch)
        shown = bool(batch.frames) and not self.intake.paused
        return shown or batch.failure is not None or self.state != state

    def execute(self, command: Command) -> None:
        """What a key asks, by name (the table in render/commands.py)."""
        commands.execute(self, command)

    def take_all(self) -> None:
        """What the source has sent enters the scene: every frame, or none while paused."""
        state = self.state
        self.take(self.intake.receive(0.0))
        while (wait := self.video_wait()) > 0:  # woken by news: it is asked again
            self.take(self.intake.receive(wait))
        for frame in self.intake.arrived():
            self.show(frame)
        if self.state != state:
            self.pace.stir()

    def take(self, batch: Batch) -> None:
        """What a batch says beside its frames: the model's architecture, or its failure."""
        described = batch.status.architecture
        if described is not None and described is not self.architecture:
            if described != self.architecture:  # a model newly loaded, not a new status
                for note in described.notes:  # what it cannot show exactly: said once
                    self.hud.notify(note)
            self.architecture = described
            if self.cues is not None:
                commands.check_cues(self)
            if described.width:
                self.scene.rest(described.blocks, described.width)
        if batch.failure is not None:
            self.hud.failed(batch.failure)
            if self.making_video:
                self.running = False  # nobody to read it on screen: end the run

    def video_wait(self) -> float:
        """How long a headless video still waits for the model in this frame (video_pace.py)."""
        if not (self.making_video and self.running):
            return 0.0
        return self.video.wait(self.intake, self.scene.tokens_seen)

    def show(self, frame: Frame) -> None:
        """`frame` enters the scene: it is seen, heard, and recorded from this moment."""
        self.pace.stir()
        if self.scene.begins_answer(frame):
            self.prompt_shown = self.intake.prompt
        self.scene.ingest(frame)
        self.camera.see(frame)
        if self.speakers is not None:
            self.speakers.cue(frame)
        self.recorder.hear(frame)

    def play(self) -> None:
        """Feed the speakers; a sound device that fails (unplugged, say) is let go, and the
        demo goes on silent (a kiosk tries to open it again)."""
        if self.speakers is None:
            return
        try:
            self.speakers.pump()
        except pygame.error as exc:
            self.silent_because = f"the sound stopped: {exc}"
            self.hud.notify(self.silent_because)
            self.speakers.close()
            self.speakers = None

    # --- what the window, a kiosk, a soak or a render ask of it ------------------------------

    @property
    def status(self) -> Status:
        return self.intake.status

    @property
    def state(self) -> str:
        """The source's state: "starting", "loading", "ready", "generating", "finished" …"""
        return self.intake.status.state

    @property
    def idle(self) -> bool:
        """Nothing being generated or waiting to be shown: typed text goes to the prompt box."""
        return self.intake.idle

    @property
    def making_video(self) -> bool:
        """A headless run nobody watches or drives: it waits for the model and ends with it.
        A kiosk (locked controls), even headless as in the soak, does neither: it draws on
        (its attract loop plays) and is healed instead."""
        return not self.target.interactive and not self.controls.locked

    @property
    def tokens_seen(self) -> int:
        return self.scene.tokens_seen

    @property
    def has_sound(self) -> bool:
        return self.speakers is not None

    def ask(self, prompt: str, max_tokens: int | None = None) -> None:
        """A new answer, of at most `max_tokens` tokens (the preset's otherwise)."""
        if max_tokens is not None:
            self.intake.gen = structs.replace(self.settings.generation, max_tokens=max_tokens)
        self.intake.generate(prompt)

    def restart_source(self, why: str) -> None:
        """Heal the source (a fresh model process, a fresh connection): the screen starts over
        with the loading scene while it loads."""
        self.intake.restart(why)
        self.scene = SceneState(self.settings.look)

    def use_speakers(self, speakers: Speakers) -> None:
        """A sound device found again: the sound comes back with the next frame."""
        speakers.synth.settings = self.settings.sound  # the look may have changed since
        self.speakers = speakers

    def record(self, path: Path, strict: bool = False) -> None:
        """Record from the next frame on (see RecordingController.start)."""
        self.recorder.start(path, self.settings, self.speakers,
                            announce=not self.making_video, strict=strict)  # fmt: skip

    def overlay(self) -> Overlay:
        """What the panels show over the scene this frame."""
        return self.hud.overlay(
            self.intake, self.scene, self.looks.current, prompt=self.prompt_shown,
            recording=self.recorder.path, architecture=self.architecture,
            scene_mix=self.stage.mix, lens=self.lens_shown, blackout=self.stage.darkness,
        )  # fmt: skip

    def poster(self, path: Path, size: tuple[int, int]) -> None:
        """The scene as a PNG at `size` and full render scale, without the prompt box, HUD or
        messages (`neuroweb snapshot`, the S key)."""
        render_poster(self.looks.current, size, self.scene, for_poster(self.overlay()),
                      self.camera, self.clock.now, path)  # fmt: skip

    # --- tuning while it runs -------------------------------------------------------------

    def poll_files(self, now_or_never: bool = False) -> None:
        """Shaders and the preset, twice a second (`now_or_never`: at once): artists tune them
        while it runs."""
        settings = self.looks.poll(now_or_never)
        if settings is not None:
            self.apply(settings)

    def apply(self, settings: Settings) -> None:
        """New settings while running: the look (its renderer), sound levels, the scene, the
        flash limit, and generation from the next prompt. Window size needs a restart."""
        old = self.settings
        self.settings = settings
        self.intake.gen = settings.generation
        self.scene.look = settings.look
        self.glitch.amount = settings.look.glitch
        if (settings.look, settings.safety, settings.venue) != (old.look, old.safety, old.venue):
            self.looks.switch(settings)
        if settings.look.scene != old.look.scene:
            self.stage.show(settings.look.scene)
        if self.speakers is not None:
            self.speakers.synth.settings = settings.sound

    def release(self) -> None:
        self.recorder.stop(ending=True)
        self.looks.release()
