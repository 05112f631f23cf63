"""Recording end to end: a real EGL framebuffer, read back through the PBO ring, encoded by the
real ffmpeg, then decoded again and checked frame by frame."""

import os
import signal
from pathlib import Path

import imageio_ffmpeg
import moderngl
import numpy as np
import pytest

from visualizer.errors import UserError
from visualizer.record import ffmpeg
from visualizer.record.ffmpeg import FrameGrabber, Recorder

FPS = 30
FRAMES = 45
BOTTOM = (0.0, 1.0, 0.0)  # the bottom half of every frame: shows the video is not upside down


@pytest.fixture(scope="module")
def ctx():
    context = moderngl.create_standalone_context(backend="egl", require=330)
    yield context
    context.release()


def top_colour(i: int) -> tuple[float, float, float]:
    """Red rises and blue falls across the clip, so order and dropped frames show."""
    t = i / (FRAMES - 1)
    return (t, 0.0, 1.0 - t)


def record(ctx: moderngl.Context, path: Path, size: tuple[int, int]) -> tuple[Path | None, int]:
    """Render FRAMES frames, grab and encode them; return close()'s path and the None grabs."""
    w, h = size
    colour = ctx.texture(size, 4)
    fbo = ctx.framebuffer(color_attachments=[colour])
    grabber = FrameGrabber(ctx, size)
    empty_grabs = 0
    with Recorder(path, size, FPS) as recorder:
        for i in range(FRAMES):
            fbo.clear(*top_colour(i), 1.0)
            fbo.clear(*BOTTOM, 1.0, viewport=(0, 0, w, h // 2))
            frame = grabber.grab(fbo)
            if frame is None:
                empty_grabs += 1
            else:
                assert recorder.write(frame)
        for frame in grabber.flush():
            assert recorder.write(frame)
    assert recorder.failed is None
    assert recorder.frames_written == FRAMES
    grabber.release()
    fbo.release()
    colour.release()
    return recorder.path if recorder.failed is None else None, empty_grabs


def decode(path: Path) -> tuple[dict, list[np.ndarray]]:
    reader = imageio_ffmpeg.read_frames(str(path))
    meta = next(reader)
    w, h = meta["size"]
    return meta, [np.frombuffer(f, np.uint8).reshape(h, w, 3) for f in reader]


def test_recording_has_every_frame_in_order_and_upright(ctx, tmp_path):
    path = tmp_path / "clip.mp4"
    path.write_bytes(b"an older recording")  # replaced, since this recording succeeds
    written, empty_grabs = record(ctx, path, (320, 180))
    assert written == path
    assert empty_grabs == 2  # the ring of 3 lags two frames; flush() hands back the rest
    assert list(tmp_path.iterdir()) == [path]  # the partial file was renamed, not left behind

    count, seconds = imageio_ffmpeg.count_frames_and_secs(str(path))
    assert count == FRAMES
    assert seconds == pytest.approx(FRAMES / FPS, abs=0.05)
    meta, frames = decode(path)
    assert meta["size"] == (320, 180)
    assert len(frames) == FRAMES
    for i, image in enumerate(frames):
        top, bottom = image[45, 160].astype(int), image[135, 160].astype(int)
        assert np.abs(top - np.array(top_colour(i)) * 255).max() < 16, (i, top)
        assert np.abs(bottom - np.array(BOTTOM) * 255).max() < 16, (i, bottom)


def test_odd_size_is_cropped_to_even(ctx, tmp_path):
    path = tmp_path / "odd.mp4"
    assert record(ctx, path, (321, 181))[0] == path
    assert imageio_ffmpeg.count_frames_and_secs(str(path))[0] == FRAMES
    meta, frames = decode(path)
    assert meta["size"] == (320, 180)
    assert frames[-1][0, 0, 0] > 200 and frames[-1][-1, 0, 1] > 200  # red top, green bottom


def test_ffmpeg_dying_fails_the_recording_and_keeps_the_old_file(tmp_path):
    path = tmp_path / "clip.mp4"
    path.write_bytes(b"an older recording")
    frame = bytes(64 * 36 * 4)
    recorder = Recorder(path, (64, 36), FPS, queue_frames=2)
    recorder.start()
    assert recorder.write(frame)
    recorder._process.kill()
    recorder._process.wait()  # dead, not just signalled: its end of the pipe is closed
    # Each write either queues (at most the queue, plus one in the writer's hands, plus one
    # blocked put that the failing writer releases) or reports the failure: it cannot hang.
    results = [recorder.write(frame) for _ in range(2 + 3)]
    assert results[-1] is False
    assert recorder.write(frame) is False
    assert recorder.failed is not None and str(path) in recorder.failed
    assert "\n" not in recorder.failed
    assert recorder.close() is None
    assert path.read_bytes() == b"an older recording"
    assert list(tmp_path.iterdir()) == [path]


def test_a_failed_remux_keeps_the_recording_playable(tmp_path):
    """If the final mp4 cannot be written, nothing recorded is thrown away."""
    path = tmp_path / "clip.mp4"
    recorder = Recorder(path, (64, 36), FPS, audio_rate=48000)
    recorder.start()
    for _ in range(10):
        assert recorder.write(bytes(64 * 36 * 4))
    recorder.write_audio(np.zeros((4800, 2), np.float32))
    (tmp_path / ".clip.mp4.partial.mp4").mkdir()  # where the remux writes: it cannot
    assert recorder.close() is None
    assert "kept, playable, as .clip.mp4.partial.mkv and .clip.mp4.partial.wav" in recorder.failed
    frames, _ = imageio_ffmpeg.count_frames_and_secs(str(tmp_path / ".clip.mp4.partial.mkv"))
    assert frames == 10 and not path.exists()


def test_ffmpeg_error_is_reported_with_its_own_words(tmp_path):
    path = tmp_path / "clip.mp4"
    with Recorder(path, (64, 36), FPS, speed="no-such-preset") as recorder:
        recorder.write(bytes(64 * 36 * 4))
    assert recorder.failed is not None and str(path) in recorder.failed
    assert "invalid preset 'no-such-preset'" in recorder.failed
    assert list(tmp_path.iterdir()) == []


def test_hung_ffmpeg_is_killed_instead_of_hanging_the_render_thread(tmp_path, monkeypatch):
    monkeypatch.setattr(ffmpeg, "FINISH_TIMEOUT_S", 0.2)
    monkeypatch.setattr(ffmpeg, "EXIT_TIMEOUT_S", 0.2)
    path = tmp_path / "clip.mp4"
    frame = bytes(320 * 180 * 4)  # larger than a pipe's buffer: a stopped reader blocks the writer
    recorder = Recorder(path, (320, 180), FPS, queue_frames=2)
    recorder.start()
    os.kill(recorder._process.pid, signal.SIGSTOP)
    # At most: one frame in the writer's hands, two queued, then a write that times out.
    assert [recorder.write(frame) for _ in range(4)][-1] is False
    assert "took no frame" in recorder.failed and "killed by signal 9" in recorder.failed
    assert recorder.close() is None
    assert list(tmp_path.iterdir()) == []


def test_recording_with_no_frames_fails_without_leaving_a_file(tmp_path):
    with Recorder(tmp_path / "clip.mp4", (64, 36), FPS) as recorder:
        pass
    assert recorder.failed is not None and "no frames" in recorder.failed
    assert list(tmp_path.iterdir()) == []


def test_missing_folder_is_a_user_error(tmp_path):
    path = tmp_path / "missing" / "clip.mp4"
    with pytest.raises(UserError, match=str(path)):
        Recorder(path, (64, 36), FPS)


def test_folder_that_is_a_file_is_a_user_error(tmp_path):
    (tmp_path / "notes.txt").write_text("not a folder")
    path = tmp_path / "notes.txt" / "clip.mp4"
    with pytest.raises(UserError, match=str(path)):
        Recorder(path, (64, 36), FPS)
