"""A recording in progress: every presented frame is read back (without stalling, through the
grabber's ring) and handed to the encoder as many times as the video's clock needs.

Fixed-step renders (headless) draw exactly one frame per video frame, so each is written once.
A live window draws at the display's rate, which rarely equals the video's: the session keeps
the video in real time by showing, in each video frame, the latest frame drawn by its moment (a
60 Hz window recorded at 30 fps writes every other frame; a slow 20 fps frame rate is written
1–2 times). So a frame is written once the next one arrives, when it is known how long it stayed
on screen. Nothing is dropped because the encoder is slow: the encoder's bounded queue blocks
instead.

The soundtrack is synthesised on the video's own clock: `hear` renders the synth up to the first
video frame that shows a new token, then cues it, so the token sounds with that very frame. At
the end the sound is made exactly as long as the video.
"""

import math
from collections import deque
from pathlib import Path

import moderngl

from visualizer.config import RecordSettings
from visualizer.frame import Frame
from visualizer.record.ffmpeg import FrameGrabber, Recorder
from visualizer.record.stream import Streamer
from visualizer.sound.synth import Synth


class RecordingSession:
    def __init__(
        self,
        ctx: moderngl.Context,
        path: Path,
        size: tuple[int, int],
        settings: RecordSettings,
        realtime: bool,
        now: float,
        synth: Synth | None = None,
        alpha: bool = False,
        encoder: type[Recorder | Streamer] = Recorder,
    ) -> None:
        """`synth`: the soundtrack's synthesiser, already in its starting state (None: silent);
        `alpha`: the video keeps the picture's alpha (see Recorder); `encoder`: a Streamer for
        a live stream, whose `path` is its URL."""
        self.path, self.size, self.realtime = path, size, realtime
        self.fps = settings.fps
        self._synth = synth
        rate = synth.rate if synth is not None else None
        self._recorder = encoder(
            path, size, settings.fps, settings.crf, settings.speed, audio_rate=rate, alpha=alpha,
            pix_fmt=settings.pix_fmt,
        )
        self._recorder.start()
        self._grabber = FrameGrabber(ctx, size)
        self._start = now
        self._times: deque[float] = deque()  # when each frame still in the grabber's ring was drawn
        self._queued = 0  # video frames handed to the encoder (its own count lags behind)
        self._held: tuple[bytes, float] | None = None  # realtime: the last frame, and its time
        self._elsewhere = 0  # video frames after these, drawn by another process (pass_over)

    @property
    def failed(self) -> str | None:
        return self._recorder.failed

    @property
    def encoder_pid(self) -> int:
        """The ffmpeg process encoding this recording."""
        return self._recorder.pid

    def capture(self, fbo: moderngl.Framebuffer, now: float) -> str | None:
        """Grab this frame; returns a message when the recording has to stop."""
        if fbo.size != self.size:
            return "the window changed size"
        if self._synth is not None:  # written as it goes, so a crash keeps the sound too
            self._sound_until(round((now - self._start) * self._synth.rate))
        self._times.append(now)
        frame = self._grabber.grab(fbo)
        if frame is not None:
            self._write(frame, self._times.popleft())
        return self._recorder.failed

    def pass_over(self, now: float) -> None:
        """A video frame at `now` that another process draws (a video rendered in parts): only
        the soundtrack goes on, and the sound ends with the whole video."""
        if self._synth is not None:
            self._sound_until(round((now - self._start) * self._synth.rate))
        self._elsewhere += 1

    def hear(self, frame: Frame, now: float) -> None:
        """`frame` enters the scene at `now`: the soundtrack plays it from the first video frame
        drawn after that."""
        if self._synth is not None:
            self._sound_until(self._slot(now) * self._synth.rate // self.fps)
            self._synth.cue(frame)

    def _slot(self, at: float) -> int:
        """The first video frame at or after the moment `at` (the epsilon absorbs float error)."""
        return math.ceil((at - self._start) * self.fps - 1e-6)

    def _sound_until(self, sample: int) -> None:
        if self._recorder.failed is None:
            self._recorder.write_audio(self._synth.render_until(sample))

    def _write(self, frame: bytes, drawn: float) -> None:
        if not self.realtime:
            self._fill(frame, self._queued + 1)
            return
        if self._held is not None:  # on screen from its own moment until this frame's
            self._fill(self._held[0], self._slot(drawn))
        self._held = (frame, drawn)

    def _fill(self, frame: bytes, until: int) -> None:
        """Write `frame` as video frames up to (not including) number `until`."""
        for _ in range(until - self._queued):
            if not self._recorder.write(frame):
                return
            self._queued += 1

    def abort(self) -> None:
        """Stop and keep nothing (the run failed)."""
        self._grabber.release()
        self._recorder.abort()

    def close(self, now: float | None = None) -> Path | None:
        """Write the frames still in the grabber's ring, finalise the file; its path, or None.
        `now`: the moment of stopping (by default the last frame's), up to which a live
        recording's last frame stays on screen (a slow last frame, 0.24 s after a stall, was
        otherwise cut from the video)."""
        if self._recorder.failed is None:
            for frame in self._grabber.flush():
                self._write(frame, self._times.popleft())
            if self._held is not None:  # the last frame, up to its own moment (at least once)
                frame, drawn = self._held
                end = drawn if now is None else max(drawn, now)
                last = math.floor((end - self._start) * self.fps + 1e-6)
                self._fill(frame, max(self._queued, last) + 1)
        if self._synth is not None:  # the sound lasts exactly as long as the video
            frames = self._queued + self._elsewhere
            self._sound_until(frames * self._synth.rate // self.fps)
        self._grabber.release()
        return self._recorder.close()
