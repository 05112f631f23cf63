"""The app's recording, one at a time: started by the R key, the command line or a soak; stopped
by the R key, a quit or a problem (each said on screen, and the demo goes on); or aborted with
nothing kept (a render that failed, a run the model refused). Beside it, a live stream
(`record.stream`), which takes the same frames and sound from the start to the end."""

from collections.abc import Callable
from pathlib import Path

import moderngl

from visualizer.clock import FixedStepClock, RealClock
from visualizer.config import Settings
from visualizer.errors import UserError
from visualizer.frame import Frame
from visualizer.record.session import RecordingSession
from visualizer.record.stream import Streamer
from visualizer.sound.speakers import Speakers
from visualizer.sound.synth import Synth


class RecordingController:
    def __init__(self, target, clock: RealClock | FixedStepClock,
                 notify: Callable[[str], None], alpha: bool = False) -> None:  # fmt: skip
        """`notify`: shows a line on screen (the HUD's notices); `alpha`: record the picture's
        alpha too (an alpha render: ProRes 4444 for a .mov, else a folder of PNGs)."""
        self.target, self.clock, self.notify, self.alpha = target, clock, notify, alpha
        self.session: RecordingSession | None = None  # the recording in progress
        self.last: Path | None = None  # the file the last recording saved (None: it failed)
        self.failed: str | None = None  # why the last recording failed
        self.streaming: RecordingSession | None = None  # the live stream, if any

    @property
    def active(self) -> bool:
        return self.session is not None

    @property
    def capturing(self) -> bool:
        """A recording or a stream takes the frames."""
        return self.session is not None or self.streaming is not None

    def stream(self, url: str, settings: Settings, speakers: Speakers | None) -> None:
        """Stream the picture and its sound to `url` from the next frame to the end."""
        self.streaming = RecordingSession(self.target.ctx, url, self.target.size, settings.record,
                                          isinstance(self.clock, RealClock), self._begins(),
                                          _synth(settings, speakers), encoder=Streamer)  # fmt: skip
        self.notify(f"streaming to {url}")

    def _begins(self) -> float:
        """The first video frame's moment: the next frame drawn (a fixed step's is a step
        from now)."""
        return self.clock.wall + (0.0 if isinstance(self.clock, RealClock) else self.clock.step)

    def _sessions(self) -> list[RecordingSession]:
        """The recording and the stream, those there are."""
        return [s for s in (self.session, self.streaming) if s is not None]

    @property
    def path(self) -> Path | None:
        """The file being recorded."""
        return self.session.path if self.session is not None else None

    @property
    def encoder_pid(self) -> int | None:
        return self.session.encoder_pid if self.session is not None else None

    def start(self, path: Path, settings: Settings, speakers: Speakers | None, *,
              announce: bool, strict: bool) -> None:  # fmt: skip
        """Record from the next frame on. The soundtrack continues the speakers' synth, or
        starts one of its own. `strict`: a bad path raises UserError (asked for on the command
        line); otherwise it is said on screen and the demo goes on (the R key). `announce`: say
        the file on screen (a video does not show its own file name)."""
        try:
            self.session = RecordingSession(self.target.ctx, path, self.target.size,
                                            settings.record,
                                            realtime=isinstance(self.clock, RealClock),
                                            now=self._begins(), synth=_synth(settings, speakers),
                                            alpha=self.alpha)  # fmt: skip
        except UserError as exc:
            if strict:
                raise
            self.notify(str(exc))
            return
        if announce:
            self.notify(f"recording {path}")

    def stop(self, reason: str = "", ending: bool = False) -> None:
        """Finish the file, and say on screen where it is, or why it failed. `ending`: the app
        ends with it, and its caller says where it is (once: on stderr, a clean picture's
        notices are said there too)."""
        if ending and self.streaming is not None:
            self.streaming.close(self.clock.wall_now)
            self.streaming = None
        if self.session is None:
            return
        session, self.session = self.session, None
        saved = session.close(self.clock.wall_now)  # a live recording's last frame shows until now
        because = f" ({reason})" if reason else ""
        if saved is not None:
            if not ending:
                self.notify(f"saved {saved}{because}")
        else:
            self.failed = session.failed
            self.notify(f"recording failed: {session.failed}")
        self.last = saved

    def abort(self) -> None:
        """Stop the recording and keep nothing of it."""
        for session in self._sessions():
            session.abort()
        self.session = self.streaming = None

    def hear(self, frame: Frame) -> None:
        """`frame` enters the scene now: its sound goes into the soundtrack from this moment."""
        for session in self._sessions():
            session.hear(frame, self.clock.wall)

    def capture(self, fbo: moderngl.Framebuffer) -> None:
        """The frame just drawn goes into the video; a problem stops the recording."""
        if self.streaming is not None and (problem := self.streaming.capture(fbo, self.clock.wall)):
            self.notify(problem)  # the stream ends; the window and a recording go on
            self.streaming.abort()
            self.streaming = None
        if self.session is not None:
            problem = self.session.capture(fbo, self.clock.wall)
            if problem:
                self.stop(problem)

    def pass_over(self) -> None:
        """A frame not drawn here (a segment of a render in parts) still takes its time."""
        for session in self._sessions():
            session.pass_over(self.clock.wall)


def _synth(settings: Settings, speakers: Speakers | None) -> Synth | None:
    """A soundtrack's synthesiser: the speakers' continued, or one of its own (None: silent)."""
    if speakers is not None:
        return speakers.synth.fork()
    return Synth(settings.sound) if settings.sound.enabled else None
