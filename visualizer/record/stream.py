"""A live stream of the picture and its sound (`run --stream udp://HOST:PORT` or `srt://…`):
MPEG-TS through the bundled ffmpeg, for OBS or another ffmpeg to take as a media source.

It takes what a recording takes (record/session.py writes to it as to a Recorder), but nothing
is kept: the frames go to ffmpeg as they come, the sound through a pipe of its own beside them,
and the encoder is tuned for latency (x264 ultrafast, zerolatency: no B-frames and no look-ahead,
a key frame a second, the muxer not holding packets back). The render loop never waits for it:
a frame or a sound chunk that finds its queue full is dropped and counted.
"""

import os
import queue
import subprocess
import tempfile
import threading

import imageio_ffmpeg
import numpy as np

from visualizer.errors import UserError
from visualizer.record.ffmpeg import even_crop, first_line
from visualizer.sound.synth import pcm16

SCHEMES = ("udp", "srt")
QUEUE_S = 1.0  # what each queue holds, in seconds of video or sound, before it drops
STOP_S = 5.0  # ffmpeg ends the stream within this once its input ends
UDP_PACKET = 1316  # seven 188-byte TS packets: one UDP datagram without fragmentation


def stream_url(text: str) -> str:
    """`--stream`'s value checked: udp://HOST:PORT or srt://HOST:PORT (UserError otherwise)."""
    scheme, _, rest = text.partition("://")
    host, _, port = rest.partition("?")[0].rpartition(":")
    if scheme not in SCHEMES or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise UserError(f"--stream {text}: expected udp://HOST:PORT or srt://HOST:PORT")
    return text


class Streamer:
    """Record/session's encoder for a stream: the Recorder's interface, with `path` a URL."""

    def __init__(self, path: str, size: tuple[int, int], fps: int, crf: int, speed: str,
                 audio_rate: int | None = None, alpha: bool = False,
                 pix_fmt: str = "yuv420p") -> None:  # fmt: skip
        self.path, self.size, self.fps, self.crf = stream_url(str(path)), size, fps, crf
        self.audio_rate = audio_rate
        self.failed: str | None = None
        self.frames_written = self.dropped = 0
        self._video: queue.Queue[bytes | None] = queue.Queue(maxsize=max(2, round(QUEUE_S * fps)))
        self._sound: queue.Queue[bytes | None] = queue.Queue(maxsize=64)
        self._process: subprocess.Popen | None = None
        self._threads: list[threading.Thread] = []
        self._sound_pipe: int | None = None
        self._stderr = tempfile.TemporaryFile()

    def start(self) -> None:
        w, h = self.size
        inputs = ["-f", "rawvideo", "-pix_fmt", "rgba", "-s", f"{w}x{h}", "-r", str(self.fps),
                  "-i", "-"]  # fmt: skip
        keep: tuple[int, ...] = ()
        if self.audio_rate is not None:
            read, self._sound_pipe = os.pipe()
            inputs += ["-f", "s16le", "-ar", str(self.audio_rate), "-ac", "2", "-i", f"pipe:{read}"]
            keep = (read,)
        url = self.path
        if url.startswith("udp://") and "pkt_size" not in url:
            url += ("&" if "?" in url else "?") + f"pkt_size={UDP_PACKET}"
        command = [imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-loglevel", "error",
                   *inputs, "-vf", "vflip" + even_crop(self.size), "-c:v", "libx264",
                   "-preset", "ultrafast", "-tune", "zerolatency", "-g", str(self.fps),
                   "-crf", str(self.crf), "-pix_fmt", "yuv420p",
                   *(["-c:a", "aac", "-b:a", "160k"] if self.audio_rate is not None else []),
                   "-f", "mpegts", "-muxdelay", "0", "-flush_packets", "1", url]  # fmt: skip
        self._process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                         stderr=self._stderr, pass_fds=keep,
                                         start_new_session=True)  # fmt: skip
        for fd in keep:
            os.close(fd)
        video = (self._video, self._process.stdin)
        self._threads = [threading.Thread(target=self._feed, args=video, name="stream-video",
                                          daemon=True)]  # fmt: skip
        if self._sound_pipe is not None:
            sound = os.fdopen(self._sound_pipe, "wb")
            self._threads.append(threading.Thread(target=self._feed, args=(self._sound, sound),
                                                  name="stream-sound", daemon=True))  # fmt: skip
        for thread in self._threads:
            thread.start()

    @property
    def pid(self) -> int:
        if self._process is None:
            raise RuntimeError("Streamer.pid before start()")
        return self._process.pid

    def write(self, frame: bytes) -> bool:
        """Queue a frame without waiting (dropped and counted when the queue is full)."""
        self._offer(self._video, frame)
        return self.failed is None

    def write_audio(self, samples: np.ndarray) -> None:
        self._offer(self._sound, pcm16(samples))

    def _offer(self, into: queue.Queue, item: bytes) -> None:
        if self.failed is not None:
            return
        if self._process is not None and self._process.poll() is not None:
            self._fail(f"ffmpeg ended (exit status {self._process.returncode})")
            return
        try:
            into.put_nowait(item)
        except queue.Full:
            self.dropped += 1

    def _feed(self, items: queue.Queue, out) -> None:
        """A writer thread: queue → ffmpeg until the sentinel or a broken pipe."""
        with out:
            while (item := items.get()) is not None:
                try:
                    out.write(item)
                except OSError:
                    self._fail("ffmpeg stopped reading")
                    return
                self.frames_written += items is self._video

    def close(self) -> None:
        """End the stream: what is queued is sent, then ffmpeg ends it. Nothing is kept."""
        for items in (self._video, self._sound):
            try:
                items.put(None, timeout=STOP_S)
            except queue.Full:
                pass
        for thread in self._threads:
            thread.join(STOP_S)
        if self._process is not None:
            try:
                self._process.wait(STOP_S)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self._stderr.close()

    def abort(self) -> None:
        if self._process is not None:
            self._process.kill()
        self.close()

    def _fail(self, reason: str) -> None:
        if self.failed is None:
            first = first_line(self._stderr.fileno())
            self.failed = f"stream {self.path} failed: {reason}" + (f": {first}" if first else "")
