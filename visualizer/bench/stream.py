"""How late a live stream (`run --stream`, record/stream.py) shows a frame: frames handed to the
Streamer at the video's own pace, a bright one among dark ones once a second, and read back on
loopback by the bundled ffmpeg with its input buffering off (as OBS's media source with
"network buffering" at 0); the latency is from a bright frame handed over to it decoded. The
encoder's queue, x264 (ultrafast, zerolatency), the MPEG-TS muxer, UDP and the reader's demuxer
and decoder are in it; a player's own buffer and the screen are not."""

import subprocess
import threading
import time

import imageio_ffmpeg
import numpy as np

from visualizer.network import udp_socket
from visualizer.record.stream import Streamer

BRIGHT_FRAMES = 6  # one a second, once the reader shows frames (its start, finding the
#                   stream's tables and a key frame, takes seconds and is not the latency)
START_S = 20.0  # the longest the reader may take to show its first frame
READ = (32, 18)  # the reader scales each frame to this, grey
BRIGHT = 128  # a frame read back brighter than this (mean, 0..255) is a bright one


def _free_udp_port() -> int:
    with udp_socket("127.0.0.1", 0, "bench") as probe:
        return probe.getsockname()[1]


def stream_latency(size: tuple[int, int] = (1280, 720), fps: int = 30,
                   bright_frames: int = BRIGHT_FRAMES) -> dict:  # fmt: skip
    """`stream_latency_ms_median`, `_max` and how many bright frames came back (`_seen`, of
    `_sent`), streamed at `size` and `fps`."""
    url = f"udp://127.0.0.1:{_free_udp_port()}"
    w, h = READ
    reader = subprocess.Popen(
        [imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-loglevel", "error",
         "-fflags", "nobuffer", "-flags", "low_delay", "-probesize", "32768",
         "-analyzeduration", "0", "-i", f"{url}?overrun_nonfatal=1&buffer_size=8388608",
         "-vf", f"scale={w}:{h}", "-f", "rawvideo", "-pix_fmt", "gray", "pipe:"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    arrivals: list[float] = []  # when each bright frame was read back
    showing = threading.Event()  # the reader has read back a frame

    def read() -> None:
        while chunk := reader.stdout.read(w * h):
            showing.set()
            if len(chunk) == w * h and np.frombuffer(chunk, np.uint8).mean() > BRIGHT:
                arrivals.append(time.perf_counter())

    thread = threading.Thread(target=read, name="stream-reader", daemon=True)
    thread.start()
    time.sleep(0.5)  # the reader listening before the first datagram
    streamer = Streamer(url, size, fps, crf=20, speed="ultrafast")
    streamer.start()
    dark = bytes(size[0] * size[1] * 4)
    bright = np.full(size[0] * size[1] * 4, 230, np.uint8).tobytes()
    sent: list[float] = []
    start, shown_at = time.perf_counter(), None
    try:
        for i in range(round(START_S + BRIGHT_FRAMES + 1) * fps):
            time.sleep(max(0.0, start + i / fps - time.perf_counter()))
            if shown_at is None and showing.is_set():
                shown_at = i
            lit = (shown_at is not None and i > shown_at and (i - shown_at) % fps == 0
                   and len(sent) < bright_frames)
            if lit:
                sent.append(time.perf_counter())
            streamer.write(bright if lit else dark)
            if (sent and i - fps >= shown_at + bright_frames * fps) or (
                    shown_at is None and i >= START_S * fps):  # fmt: skip
                break  # a second of frames after the last bright one: the pipes pass it on
    finally:
        streamer.close()
        reader.kill()  # blocked on its socket, it would not see a SIGTERM
        reader.wait(5)
        thread.join(5)
    late = []
    for at in sent:  # each bright frame's first bright arrival after it, within a second
        came = [t - at for t in arrivals if 0 <= t - at < 1.0]
        if came:
            late.append(min(came) * 1000)
    return {
        "stream_latency_ms_median": float(np.median(late)) if late else None,
        "stream_latency_ms_max": max(late) if late else None,
        "stream_latency_seen": len(late),
        "stream_latency_sent": len(sent),
    }
