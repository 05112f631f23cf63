"""Frames → ffmpeg: read the framebuffer back without stalling, encode on a writer thread.

The render thread only grabs and queues frames; a writer thread feeds ffmpeg's stdin, so a slow
encoder applies backpressure through the bounded queue instead of losing frames.

Nothing half-made ever sits at the target path. ffmpeg writes Matroska to a hidden partial file
beside it (`.NAME.partial.mkv`), and the soundtrack goes to `.NAME.partial.wav`; both formats
stay playable when cut short, so a crash (even a kill) leaves a watchable video and its sound.
A clean finish remuxes them (video copied, sound encoded to AAC) into the mp4 at the target.

A recording with alpha (`render --alpha`) is ProRes 4444 with its alpha for a .mov (remuxed the
same way, its sound kept as PCM), or otherwise a folder of PNGs, 000001.png on, written into a
hidden `.NAME.partial/` beside it and renamed to NAME when finished, its sound as sound.wav.
"""

import os
import queue
import shutil
import subprocess
import tempfile
import threading
import wave
from collections import deque
from pathlib import Path
from typing import IO

import imageio_ffmpeg
import moderngl
import numpy as np

from visualizer.config import RecordSettings
from visualizer.paths import check_output
from visualizer.record.mux import remux
from visualizer.record.recover import hold
from visualizer.sound.synth import pcm16

FINISH_TIMEOUT_S = 60.0  # ffmpeg encodes what is queued and writes the index within this
EXIT_TIMEOUT_S = 5.0  # a failed ffmpeg is exiting; past this it is hung and gets killed
STDERR_HEAD_BYTES = 4096


class FrameGrabber:
    """Reads RGBA8 frames into a ring of pixel-pack buffers, returning each `ring - 1` grabs late.

    The lag lets the GPU finish the copy before the CPU maps the buffer, so reading never waits
    on the frame just drawn. Frames are bottom-up (GL origin), RGBA, w*h*4 bytes.
    """

    def __init__(self, ctx: moderngl.Context, size: tuple[int, int], ring: int = 3) -> None:
        if ring < 1:
            raise ValueError(f"ring must be at least 1, got {ring}")
        self.size = size
        self._buffers = [ctx.buffer(reserve=size[0] * size[1] * 4) for _ in range(ring)]
        self._pending: deque[moderngl.Buffer] = deque()
        self._next = 0

    def grab(self, fbo: moderngl.Framebuffer) -> bytes | None:
        """Start reading `fbo`; return the frame grabbed `ring - 1` calls ago, None until then."""
        buffer = self._buffers[self._next]
        self._next = (self._next + 1) % len(self._buffers)
        fbo.read_into(buffer, viewport=(0, 0, *self.size), components=4, alignment=1)
        self._pending.append(buffer)
        if len(self._pending) < len(self._buffers):
            return None
        return self._pending.popleft().read()

    def flush(self) -> list[bytes]:
        """The frames still in flight, oldest first; call once at the end of a recording."""
        frames = [buffer.read() for buffer in self._pending]
        self._pending.clear()
        return frames

    def release(self) -> None:
        for buffer in self._buffers:
            buffer.release()


_DEFAULTS = RecordSettings()  # the one default of each option, as the preset's


class Recorder:
    """Encodes bottom-up RGBA frames to an H.264 mp4 (`pix_fmt`: yuv420p, or yuv420p10le for
    High 10) through the ffmpeg binary, with an AAC soundtrack when `audio_rate` is given
    (stereo float samples through `write_audio`).
    `alpha`: the frames' alpha kept, in ProRes 4444 for a .mov `path`, else in a folder of
    PNGs at `path` (see the module's docstring).

    yuv420p needs an even width and height: an odd size loses its rightmost column and/or bottom
    row. On failure `failed` holds one line naming the file, `write` returns False, and `close`
    removes the partial files and leaves any existing file at `path` untouched.
    """

    def __init__(self, path: Path, size: tuple[int, int], fps: int,
                 crf: int = _DEFAULTS.crf, speed: str = _DEFAULTS.speed,
                 queue_frames: int = 8, pix_fmt: str = _DEFAULTS.pix_fmt,
                 audio_rate: int | None = None, alpha: bool = False) -> None:  # fmt: skip
        path = check_output(Path(path), alpha)
        self.kind = ("mov" if path.suffix.lower() == ".mov" else "png") if alpha else "mp4"
        self.path = path
        self.size = size
        self.fps = fps
        self.crf = crf
        self.speed = speed
        self.pix_fmt = pix_fmt
        self.failed: str | None = None
        self.frames_written = 0
        self._partial = path.with_name(f".{path.name}.partial" + (self.kind != "png") * ".mkv")
        self._finished = (self._partial if self.kind == "png"  # the remux, before rename
                          else path.with_name(f".{path.name}.partial.{self.kind}"))  # fmt: skip
        self.audio_rate = audio_rate
        self._audio_partial = path.with_name(f".{path.name}.partial.wav")
        self._audio: wave.Wave_write | None = None
        self.audio_written = 0  # samples per channel
        self._frame_bytes = size[0] * size[1] * 4
        self._queue: queue.Queue[bytes | None] = queue.Queue(maxsize=queue_frames)
        self._process: subprocess.Popen | None = None
        self._thread: threading.Thread | None = None
        self._stderr: IO[bytes] | None = None
        self._fail_lock = threading.Lock()
        self._hold: IO[bytes] | None = None

    def start(self) -> None:
        """Launch ffmpeg on the hidden partial file, and the writer thread that feeds it."""
        w, h = self.size
        command = [imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y",
                   "-f", "rawvideo", "-pix_fmt", "rgba", "-s", f"{w}x{h}", "-r", str(self.fps),
                   "-i", "-", *self._encoding()]  # fmt: skip
        # A file, not a pipe: ffmpeg can never block on a full stderr, and nothing is lost.
        self._stderr = tempfile.TemporaryFile()
        if self.kind == "png":  # a folder: what a cut-short try left of it is drawn again
            shutil.rmtree(self._partial, ignore_errors=True)
            self._partial.mkdir()
        else:
            self._hold = hold(self._partial, self.path)  # `neuroweb recover` leaves it alone
        # its own session: a signal to this process group (Ctrl-C in a terminal, systemd
        # stopping a unit) reaches this process, which finishes the file, not ffmpeg under it;
        # if this process dies, ffmpeg sees the end of its input and closes the file itself
        self._process = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=self._stderr,
            start_new_session=True,
        )
        self._thread = threading.Thread(target=self._feed, name="recorder", daemon=True)
        self._thread.start()
        if self.audio_rate is not None:
            self._audio = wave.open(str(self._audio_partial), "wb")
            self._audio.setnchannels(2)
            self._audio.setsampwidth(2)
            self._audio.setframerate(self.audio_rate)

    def _encoding(self) -> list[str]:
        """ffmpeg's arguments after its input: the encoder, and where it writes."""
        matroska = ["-f", "matroska", "-cluster_time_limit", "1000", "-flush_packets", "1",
                    str(self._partial)]  # fmt: skip
        if self.kind == "png":  # straight alpha, as PNG defines it
            return ["-vf", "vflip", "-c:v", "png", "-pix_fmt", "rgba", "-f", "image2",
                    "-start_number", "1", str(self._partial / "%06d.png")]  # fmt: skip
        if self.kind == "mov":  # 4:4:4 with a 16-bit alpha, BT.709 (and so tagged) as HD is
            return ["-vf", "vflip,scale=out_color_matrix=bt709:out_range=tv,format=yuva444p10le,"
                    "setparams=range=tv:color_primaries=bt709:color_trc=bt709:colorspace=bt709",
                    "-c:v", "prores_ks", "-profile:v", "4444", "-vendor", "apl0",
                    "-pix_fmt", "yuva444p10le", *matroska]  # fmt: skip
        return ["-vf", "vflip" + even_crop(self.size), "-c:v", "libx264", "-preset", self.speed,
                "-crf", str(self.crf), "-pix_fmt", self.pix_fmt, *matroska]  # fmt: skip

    def write_audio(self, samples: np.ndarray) -> None:
        """Append stereo samples ([n, 2] floats in -1..1) to the soundtrack. The WAV header is
        brought up to date on every write, so a cut-short file still plays."""
        if self._audio is None:
            raise RuntimeError("Recorder.write_audio() without audio_rate, or before start()")
        self._audio.writeframes(pcm16(samples))
        self.audio_written += len(samples)

    @property
    def pid(self) -> int:
        if self._process is None:
            raise RuntimeError("Recorder.pid before start()")
        return self._process.pid

    def write(self, frame: bytes) -> bool:
        """Queue one frame, waiting while the queue is full; False once the recording failed."""
        if self._thread is None:
            raise RuntimeError("Recorder.write() before start()")
        if len(frame) != self._frame_bytes:
            raise ValueError(f"frame is {len(frame)} bytes, expected {self._frame_bytes}")
        if self.failed is not None:
            return False
        self._put(frame)
        return self.failed is None

    def close(self) -> Path | None:
        """Finish the file and move it to `path`; None (and `failed` says why) if it failed."""
        try:
            return self._close()
        finally:
            if self._hold is not None:
                self._hold.close()
                self._hold = None

    def _close(self) -> Path | None:
        if self._process is None or self._thread is None:
            return None
        if self.failed is None:
            self._put(None)
        self._thread.join(FINISH_TIMEOUT_S)
        if self._thread.is_alive():  # stuck writing to a hung ffmpeg: _fail kills it, freeing it
            self._fail(f"ffmpeg did not finish within {FINISH_TIMEOUT_S:g} s")
            self._thread.join()
        try:
            self._process.stdin.close()
        except OSError as error:
            self._fail(f"ffmpeg stopped reading frames ({error})")
        try:
            status = self._process.wait(FINISH_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self._fail(f"ffmpeg did not finish within {FINISH_TIMEOUT_S:g} s")
        else:
            if status != 0:
                self._fail("ffmpeg could not encode the video")
            elif self.frames_written == 0:
                self._fail("no frames were written")
        self._stderr.close()
        self._process = None
        if self._audio is not None:
            self._audio.close()
        if self.failed is None and not self._remux():  # the recording is fine: keep it
            if self._finished.is_file():
                self._finished.unlink()
            kept = [p.name for p in (self._partial, self._audio_partial) if p.exists()]
            self.failed += f"; the recording is kept, playable, as {' and '.join(kept)}"
            return None
        partials = (self._partial, self._audio_partial, self._finished)
        if self.failed is not None:
            removed = list(dict.fromkeys(p.name for p in partials if p.exists()))
            for name in removed:
                if (self.path.parent / name).is_dir():
                    shutil.rmtree(self.path.parent / name)
                else:
                    (self.path.parent / name).unlink()
            if removed:
                self.failed += f"; removed the unfinished {', '.join(removed)}"
            return None
        if self.kind == "png" and self.path.is_dir():
            self.path.rmdir()  # empty (paths.check_output_folder): the frames go in its place
        os.replace(self._finished, self.path)
        for partial in partials[:2]:
            if not partial.is_dir():
                partial.unlink(missing_ok=True)
        return self.path

    def _remux(self) -> bool:
        """The partials into the mp4 (remux); False (and `failed` says why) if it could not.
        A folder of PNGs takes its sound in as sound.wav."""
        if self.kind == "png":
            if self._audio is not None:
                os.replace(self._audio_partial, self._partial / "sound.wav")
            return True
        sound = self._audio_partial if self._audio is not None else None
        problem = remux(self._partial, sound, self._finished, self.fps)
        if problem:
            self.failed = f"recording {self.path} failed: {problem}"
        return problem is None

    def __enter__(self) -> "Recorder":
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def abort(self) -> None:
        """Give the recording up: ffmpeg is killed and its partial file removed, so a run that
        ends in an error leaves nothing half-made behind (an older file at `path` stays)."""
        if self._process is not None:
            self._process.kill()
        self.close()

    def _put(self, item: bytes | None) -> None:
        """Queue `item`, waiting for room; an ffmpeg that takes nothing for so long is hung."""
        try:
            self._queue.put(item, timeout=FINISH_TIMEOUT_S)
        except queue.Full:
            self._fail(f"ffmpeg took no frame for {FINISH_TIMEOUT_S:g} s")

    def _feed(self) -> None:
        """Writer thread: queue → ffmpeg's stdin until the sentinel or a broken pipe."""
        while (frame := self._queue.get()) is not None:
            try:
                self._process.stdin.write(frame)
            except OSError as error:
                self._fail(f"ffmpeg stopped reading frames ({error})")
                self._release_blocked_writers()
                return
            self.frames_written += 1

    def _release_blocked_writers(self) -> None:
        """Empty the queue so a `write` blocked on a full queue returns (after `failed` is set)."""
        try:
            while True:
                self._queue.get_nowait()
        except queue.Empty:
            pass

    def _fail(self, reason: str) -> None:
        """Keep the first failure as one line: the file, the reason, how ffmpeg ended and the
        first thing it said (at -loglevel error that is the cause; later lines are fallout).
        Once `failed` is set, ffmpeg has exited (killed if it would not), so the writer is free."""
        with self._fail_lock:  # the render and writer threads can both see a failure
            if self.failed is not None:
                return
            try:
                status = self._process.wait(EXIT_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self._process.kill()
                status = self._process.wait()
            ended = f"killed by signal {-status}" if status < 0 else f"exit status {status}"
            said = first_line(self._stderr.fileno())
            self.failed = f"recording {self.path} failed: {reason} (ffmpeg {ended})" + (
                f": {said}" if said else ""
            )


def even_crop(size: tuple[int, int]) -> str:
    """The filter that yuv420p needs after an odd width or height: the last column or row cut
    ("" for an even size)."""
    w, h = size
    return "" if w % 2 == 0 and h % 2 == 0 else ",crop=trunc(iw/2)*2:trunc(ih/2)*2:0:0"


def first_line(fd: int) -> str:
    """The first non-blank line in `fd`, read without moving the file offset ffmpeg shares."""
    lines = os.pread(fd, STDERR_HEAD_BYTES, 0).decode(errors="replace").splitlines()
    return next((line.strip() for line in lines if line.strip()), "")
