"""`run --stream`: the picture and its sound live as MPEG-TS, read back by the bundled ffmpeg (as
OBS's media source would take it) while the run is still drawing."""

import signal
import socket
import subprocess

import imageio_ffmpeg

from tests.test_cli import _assert_user_error, neuroweb, neuroweb_here


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _streams(path) -> list[dict]:
    """ffprobe's view of `path`'s streams, through ffmpeg (imageio-ffmpeg ships no ffprobe):
    the codec and kind of each, from its one-line descriptions."""
    said = subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-i", str(path)],
                          capture_output=True, text=True).stderr  # fmt: skip
    return [{"kind": line.split(": ")[1], "codec": line.split(": ")[2].split()[0]}
            for line in said.splitlines() if line.strip().startswith("Stream #")]  # fmt: skip


def test_a_run_streams_its_picture_and_sound_to_a_reader(tiny_llama_dir, tmp_path):
    port = _free_udp_port()
    got = tmp_path / "got.ts"
    reader = subprocess.Popen([imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-loglevel",
                               "error", "-y", "-i", f"udp://127.0.0.1:{port}?timeout=20000000",
                               "-map", "0", "-c", "copy", "-t", "3", str(got)],
                              stderr=subprocess.PIPE, text=True)  # fmt: skip
    result = neuroweb_here("run", "--headless", "--frames", "150", "--size", "320x180",
                           "--model", str(tiny_llama_dir), "--prompt", "Hello", "--stream",
                           f"udp://127.0.0.1:{port}")  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert reader.poll() is None  # it is still reading: it was read while the run drew
    assert "streaming to udp://127.0.0.1" in result.stderr  # said once, to the log
    try:  # UDP has no end: a reader short of its 3 s would wait out its 20 s timeout
        reader.wait(2)
    except subprocess.TimeoutExpired:
        reader.send_signal(signal.SIGINT)  # ffmpeg's 'q': it closes the file it wrote
        reader.wait(30)
    assert reader.returncode in (0, 255), reader.stderr  # 255: ended by the SIGINT
    assert not reader.stderr.read().strip()
    kinds = {s["kind"]: s["codec"] for s in _streams(got)}
    assert kinds == {"Video": "h264", "Audio": "aac"}, kinds
    frames, seconds = imageio_ffmpeg.count_frames_and_secs(str(got))
    assert frames >= 60 and seconds >= 2.0, (frames, seconds)


def test_a_bad_stream_address_is_refused_before_the_model_loads(tmp_path):
    for bad in ("rtmp://example.org/live", "udp://127.0.0.1", "udp://127.0.0.1:99999"):
        _assert_user_error(neuroweb("run", "--stream", bad, "--model", str(tmp_path / "none")),
                           f"--stream {bad}: expected udp://HOST:PORT or srt://HOST:PORT")
