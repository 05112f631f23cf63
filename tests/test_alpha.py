"""An alpha render (`neuroweb render --alpha`), as an editor receives it: ProRes 4444 whose
decoded alpha plane is 0 in the background and partial in the glow, its colour divided by its
alpha (so that over black it is the picture, with no dark fringe over footage), timed at an
exact frame rate; or a folder of RGBA PNGs with the soundtrack; and the names it refuses."""

import re
import subprocess
import wave
from pathlib import Path

import imageio_ffmpeg
import numpy as np
import pygame
import pytest

from tests.test_app import _synthetic_run
from visualizer.cli import main
from visualizer.render.offline import paced
from visualizer.trace import write_trace

FFMPEG = imageio_ffmpeg.get_ffmpeg_exe()
SIZE, FPS = (192, 108), 12


@pytest.fixture(scope="module")
def trace(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("alpha") / "run.npz"
    write_trace(path, _synthetic_run(12), {"prompt": "a glowing run"})
    return path


def _render(trace: Path, *out: str) -> int:
    return main(["render", "--trace", str(trace), *out, "--size", f"{SIZE[0]}x{SIZE[1]}",
                 "--fps", str(FPS), "--token-rate", "20"])  # fmt: skip


def _decoded(path: Path, at_s: float, pix_fmt: str, filters: str = "null") -> np.ndarray:
    """One frame of `path` at `at_s`, decoded by ffmpeg as `pix_fmt` ([h, w, channels])."""
    done = subprocess.run([FFMPEG, "-v", "error", "-ss", str(at_s), "-i", str(path), "-vf",
                           filters, "-frames:v", "1", "-f", "rawvideo", "-pix_fmt", pix_fmt, "-"],
                          capture_output=True, check=True)  # fmt: skip
    return np.frombuffer(done.stdout, np.uint8).reshape(SIZE[1], SIZE[0], -1)


def test_a_mov_is_prores_4444_with_a_real_alpha_channel(trace, tmp_path):
    out = tmp_path / "web.mov"
    assert _render(trace, "--alpha", str(out)) == 0
    said = subprocess.run([FFMPEG, "-hide_banner", "-i", str(out)], capture_output=True,
                          text=True).stderr  # fmt: skip
    video = next(line for line in said.splitlines() if "Video:" in line)
    assert "prores (4444)" in video and re.search(r"yuva444p1[02]le", video), video
    assert "bt709" in video  # tagged as HD is
    packets = subprocess.run([FFMPEG, "-v", "error", "-i", str(out), "-map", "0:v", "-c", "copy",
                              "-f", "framecrc", "-"], capture_output=True, text=True).stdout
    durations = {line.split(",")[3] for line in packets.splitlines() if not line.startswith("#")}
    assert len(durations) == 1  # every frame 1/12 s: a constant rate, as an editor expects
    assert "Audio: pcm_s16le" in said
    alpha = _decoded(out, 1.2, "gray", "alphaextract")[..., 0]  # [h, w]
    assert (alpha == 0).mean() > 0.3  # the background, transparent
    assert alpha[0, -1] == alpha[-1, -1] == 0  # the corners, away from every panel
    partial = (alpha > 0) & (alpha < 255)
    assert partial.mean() > 0.01 and len(np.unique(alpha[partial])) > 20  # the glow's edges
    rgba = _decoded(out, 1.2, "rgba").astype(np.float32)  # [h, w, 4]
    lit = rgba[..., 3] > 64
    # straight alpha: the colour is the light divided by its coverage, its brightest channel
    # near full (a picture left undivided, laid over footage, would darken it twice)
    assert np.median(rgba[lit][:, :3].max(axis=1)) > 240


def test_a_folder_is_rgba_pngs_with_the_sound_and_what_is_refused(trace, tmp_path, capsys):
    out = tmp_path / "frames"
    assert _render(trace, "--alpha", f"{out}/") == 0
    pngs = sorted(out.glob("*.png"))
    assert pngs[0].name == "000001.png" and len(pngs) == paced(_synthetic_run(12), FPS, 20)[1]
    with wave.open(str(out / "sound.wav")) as sound:
        assert abs(sound.getnframes() / sound.getframerate() - len(pngs) / FPS) < 0.01
    image = pygame.image.load(pngs[12])
    assert image.get_bitsize() == 32
    alpha = pygame.surfarray.array_alpha(image)
    assert (alpha == 0).mean() > 0.3 and ((alpha > 0) & (alpha < 255)).mean() > 0.01
    assert not list(tmp_path.glob(".*"))  # no partial folder or file left beside it
    capsys.readouterr()
    for args, said in (
        (["--alpha", str(tmp_path / "web.mp4")], "expected a .mov (ProRes 4444) or a folder"),
        (["--alpha", f"{out}/"], "the folder is not empty"),
        (["--alpha", f"{tmp_path}/no/such/"], "does not exist"),
        (["--alpha", "a.mov", "--out", "a.mp4"], "not allowed with argument"),
    ):
        assert _render(trace, *args) == 2
        err = capsys.readouterr().err
        assert said in err and len(err.strip().splitlines()) == 1, err
