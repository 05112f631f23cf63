"""The film's sound: the synthesiser of `neuroweb render` (sound/synth.py) played by the same
plan as the picture, a beat on the plan's grid, and the mix brought to TARGET_LUFS as measured
by ffmpeg's EBU R128 filter.

The plan's step k says what video frame k sounds like: new samples from the synth (the frames
shown at k cued first, as a render cues them), or a copy of an earlier frame's samples (a
stutter's repeat) or the same played backwards (a rewind). The beat: a kick on beats 1 and 3
of each bar, a tick on 2 and 4, and a hit at every cut, so the edit's grid is heard.
"""

import re
import subprocess
import tempfile
import wave
from collections.abc import Sequence
from pathlib import Path

import imageio_ffmpeg
import numpy as np

from visualizer.config import SoundSettings
from visualizer.film.grammar import BAR, TICKS, Plan, road_not_taken
from visualizer.frame import Frame
from visualizer.sound.synth import RATE, Synth, pcm16

TARGET_LUFS = -16.0  # what video sites play at
PEAK = 0.89  # -1 dBFS: what the normalised mix's peaks are kept under
KICK, TICK, HIT = 0.5, 0.06, 0.22  # the beat's levels, before normalising


def soundtrack(plan: Plan, runs: Sequence[Sequence[Frame]], settings: SoundSettings,
               seed: int = 0) -> np.ndarray:  # fmt: skip
    """[samples, 2] float32 for the plan's video frames, before normalising."""
    bounds = [k * RATE // plan.fps for k in range(len(plan.steps) + 1)]
    out = np.zeros((bounds[-1], 2), np.float32)
    synth = Synth(settings, seed=seed)
    for k, step in enumerate(plan.steps):
        a, b = bounds[k], bounds[k + 1]
        kind, j = step.sound
        if kind == "new":
            for run, t in step.show:
                synth.cue(runs[run][t])
            if step.ghost is not None:
                synth.cue(road_not_taken(runs[step.ghost[0]], step.ghost[1]))
            out[a:b] = synth.render(b - a)
            continue
        at = bounds[j] + np.minimum(np.arange(b - a), bounds[j + 1] - bounds[j] - 1)
        out[a:b] = out[at] if kind == "copy" else out[at[::-1]]
    return out + beat(plan, bounds, seed)


def beat(plan: Plan, bounds: list[int], seed: int) -> np.ndarray:
    """The grid made audible: kicks, ticks, and a hit at each cut."""
    out = np.zeros((bounds[-1], 2), np.float32)
    rng = np.random.default_rng(seed + 1)
    t = np.arange(round(0.3 * RATE)) / RATE
    sweep = 2 * np.pi * np.cumsum(45 + 90 * np.exp(-t / 0.03)) / RATE
    kick = (np.sin(sweep) * np.exp(-t / 0.13))[:, None] * KICK
    noise = rng.standard_normal((len(t), 2))
    tick = np.diff(noise, axis=0, prepend=0) * np.exp(-t / 0.015)[:, None] * TICK
    hit = (noise * np.exp(-t / 0.07)[:, None] + np.sin(2 * np.pi * 110 * t)[:, None]
           * np.exp(-t / 0.2)[:, None]) * HIT  # fmt: skip
    i = 0  # every beat to the last frame (a tick is fps·60/bpm/4 frames, not a whole number)
    while (frame := plan.frame_of(i)) < len(plan.steps):
        _add(out, kick if i % (BAR // 2) == 0 else tick, bounds, frame)
        i += TICKS
    for shot in plan.cuts:
        _add(out, hit, bounds, shot.start)
    return out


def _add(out: np.ndarray, sound: np.ndarray, bounds: list[int], frame: int) -> None:
    if frame >= len(bounds) - 1:
        return
    a = bounds[frame]
    n = min(len(sound), len(out) - a)
    out[a : a + n] += sound[:n]


def loudness(samples: np.ndarray) -> float:
    """Integrated loudness (LUFS) as ffmpeg's ebur128 filter measures it."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "mix.wav"
        write_wav(path, samples)
        return measured(path)


def measured(path: Path) -> float:
    """The integrated loudness (LUFS) of a file's sound, by ffmpeg's ebur128 filter."""
    done = subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-nostats", "-i",
                           str(path), "-map", "0:a:0", "-af", "ebur128=framelog=quiet", "-f",
                           "null", "-"], capture_output=True, text=True, timeout=300)  # fmt: skip
    found = re.findall(r"I:\s+(-?[\d.]+|-inf) LUFS", done.stderr)
    if done.returncode != 0 or not found:
        raise RuntimeError(f"ffmpeg could not measure the loudness of {path}")
    return float(found[-1])


def normalised(samples: np.ndarray) -> tuple[np.ndarray, float]:
    """The mix at TARGET_LUFS (its peaks eased under PEAK), and its measured loudness."""
    level = loudness(samples)
    for _ in range(3):  # a mix already at its loudness has its peaks eased all the same
        if not np.isfinite(level) or (abs(level - TARGET_LUFS) < 0.2
                                      and np.abs(samples).max() <= PEAK):  # fmt: skip
            break
        samples = _under_peak(samples * np.float32(10 ** ((TARGET_LUFS - level) / 20)))
        level = loudness(samples)
    return samples, level


def _under_peak(x: np.ndarray) -> np.ndarray:
    """Peaks above a knee at 0.7 eased toward PEAK (tanh), the rest untouched."""
    knee = 0.7
    over = np.abs(x) > knee
    eased = np.sign(x) * (knee + (PEAK - knee) * np.tanh((np.abs(x) - knee) / (PEAK - knee)))
    return np.where(over, eased, x).astype(np.float32)


def write_wav(path: Path, samples: np.ndarray) -> None:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(pcm16(samples))
