"""`neuroweb film`: two answers of the real SmolLM2, traced once, edited twice into a short film
at a small size; the same arguments give the same frames and sound, every cut in the .otio is
an event of its trace that the picture shows there, the sound is at -16 LUFS, the cut rate,
and the project's flash analyser passes the film."""

import subprocess
from pathlib import Path

import imageio_ffmpeg
import numpy as np
import pytest

from tests.test_cli import _assert_user_error, neuroweb
from visualizer.config import load_settings
from visualizer.film.events import Event, check_event, find_events
from visualizer.film.grammar import TICKS, Plan, Step, plan_film
from visualizer.film.soundtrack import PEAK, TARGET_LUFS, beat, loudness, measured, normalised
from visualizer.film.timeline import read_cuts
from visualizer.safety.flashes import analyse_video
from visualizer.sound.synth import RATE
from visualizer.sources import open_source
from visualizer.trace import frames_from_trace, read_trace, write_trace
from visualizer.tracer import answer

pytestmark = pytest.mark.slow
PROMPTS = ("What is it like to be a language model?", "Tell me a dream about the sea.")
# drawn by one process: the suite already runs on two workers
FILM = ["--length", "10", "--size", "240x136", "--fps", "15", "--processes", "1"]


@pytest.fixture(scope="module")
def traces(tmp_path_factory, smollm2_folder) -> list[Path]:
    """Both answers from one model process, sampled as the glitch preset samples (T = 1)."""
    folder = tmp_path_factory.mktemp("film-traces")
    settings = load_settings("glitch", {"generation": {"max_tokens": 20}})
    paths = []
    with open_source(settings, lossless=True) as source:
        for i, prompt in enumerate(PROMPTS):
            builder, meta = answer(source, settings, prompt)
            paths.append(folder / f"t{i}.npz")
            write_trace(paths[-1], builder, meta)
    return paths


def _film(traces: list[Path], out: Path) -> Path:
    args = [a for t in traces for a in ("--trace", str(t))]
    result = neuroweb("film", *args, "--out", str(out), *FILM, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "cuts (" in result.stderr and out.with_suffix(".otio").is_file()
    return out


@pytest.fixture(scope="module")
def films(traces, tmp_path_factory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("films")
    return _film(traces, folder / "a.mp4"), _film(traces, folder / "b.mp4")


def _framemd5(path: Path, stream: str) -> list[str]:
    out = subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-i", str(path),
                          "-map", stream, "-f", "framemd5", "-"], capture_output=True,
                         text=True, check=True).stdout  # fmt: skip
    return [line.rsplit(",", 1)[-1].strip() for line in out.splitlines()
            if line and not line.startswith("#")]  # fmt: skip


def test_the_same_arguments_give_the_same_frames_and_sound(films):
    a, b = films
    video, sound = _framemd5(a, "0:v:0"), _framemd5(a, "0:a:0")
    assert len(video) > 150 and len(sound) > 100
    assert video == _framemd5(b, "0:v:0")
    assert sound == _framemd5(b, "0:a:0")
    assert len(set(video)) > len(video) // 3  # it moves: not one frame held


def test_every_cut_is_an_event_of_its_trace_shown_at_that_frame(films, traces):
    clips = read_cuts(films[0].with_suffix(".otio"))
    runs = [frames_from_trace(read_trace(t)) for t in traces]
    cuts = [c for c in clips if c["event"] is not None]
    assert {c["event"]["kind"] for c in cuts} >= {"answer", "end"}
    assert len({c["event"]["kind"] for c in cuts}) >= 4  # moves of several kinds
    # the plan again, from the traces: each cut shows its event's token at its first frame
    events = [find_events(frames, i) for i, frames in enumerate(runs)]
    plan = plan_film(runs, events, 10.0, 15, 120.0, 0)
    lead = clips[0]["start_frame"] if clips[0]["card"] != "notice" else clips[1]["start_frame"]
    for clip in cuts:
        event = Event(**{**clip["event"], "words": tuple(clip["event"]["words"])})
        assert check_event(runs[event.run], event), clip
        k = clip["start_frame"] - lead
        tick = round(k * plan.bpm * TICKS / (60 * plan.fps))
        assert plan.frame_of(tick) == k and tick % TICKS == 0, f"{clip['name']} is off the beat"
        shown = [(r, t) for step in plan.steps[: k + 1] for r, t in step.show]
        if event.kind == "end":
            assert shown[-1] == (event.run, event.token), clip
        else:
            assert (event.run, event.token) in plan.steps[k].show, clip
    assert len(plan.cuts) == len(cuts)


def test_the_sound_is_at_minus_16_lufs(films):
    assert abs(measured(films[0]) - TARGET_LUFS) <= 1.0


@pytest.mark.parametrize("fps, bpm", [(30, 120.0), (15, 120.0), (24, 97.0)])
def test_the_beat_is_heard_to_the_last_frame(fps, bpm):
    """A kick or tick at every beat of a 60 s plan, the closing card's last bars included (a
    tick of 3.75 frames was counted as 4: the beat stopped 4 s before the end)."""
    plan = Plan(fps, bpm, (Step(),) * (60 * fps), ())
    bounds = [k * RATE // fps for k in range(len(plan.steps) + 1)]
    out = np.abs(beat(plan, bounds, 0)).max(axis=1)
    beats = [plan.frame_of(i) for i in range(0, 10**4, TICKS)]
    beats = [f for f in beats if f < len(plan.steps)]
    assert len(beats) == int(bpm)  # a minute of beats
    for f in beats:
        assert out[bounds[f] : bounds[f] + RATE // 50].max() > 0.04, f"no beat at frame {f}"


def test_a_mix_already_at_its_loudness_has_its_peaks_eased():
    """The cut's hit on a kick went over full scale (1.44) in a mix already at -16 LUFS, and
    was left so: clipped in the film's sound (+0.6 dBFS after AAC)."""
    rng = np.random.default_rng(0)
    mix = (0.1 * rng.standard_normal((3 * RATE, 2))).astype(np.float32)
    mix *= np.float32(10 ** ((TARGET_LUFS - loudness(mix)) / 20))
    mix[RATE :: RATE // 4] = 1.44
    assert abs(loudness(mix) - TARGET_LUFS) < 0.2
    out, lufs = normalised(mix)
    assert np.abs(out).max() <= PEAK and abs(lufs - TARGET_LUFS) < 0.2


def test_at_least_20_cuts_a_minute(films):
    clips = read_cuts(films[0].with_suffix(".otio"))
    last = clips[-1]
    seconds = (last["start_frame"] + 1) / 15  # the closing card's first frame, and on
    assert len([c for c in clips if c["event"] is not None]) * 60 / seconds >= 20


def test_the_flash_analyser_passes_the_film(films):
    report = analyse_video(films[0])
    assert report.frames > 150 and report.compliant, report


def test_a_notice_opens_the_film_when_the_limiter_held_flashes_back(films):
    clips = read_cuts(films[0].with_suffix(".otio"))
    assert [c["card"] for c in clips if c["card"]][-2:] == ["title", "closing"]
    assert clips[0]["card"] in ("notice", "title")


@pytest.mark.parametrize("args, needle", [
    (["--length", "3"], "--length"),
    (["--fps", "0"], "--fps"),
    (["--size", "10x10"], "--size"),
    (["--prompts", "/no/such/file"], "--prompts"),
])  # fmt: skip
def test_bad_film_arguments_say_one_line(tmp_path, args, needle):
    result = neuroweb("film", "--out", str(tmp_path / "f.mp4"), *args)
    _assert_user_error(result, needle)
