"""The synthesiser: deterministic, and each part follows what it claims to follow."""

from dataclasses import replace

import numpy as np
import pytest
from msgspec import structs

from visualizer.config import CaptureSettings, GenerationSettings, SoundSettings
from visualizer.model.generate import generate_frames
from visualizer.sound.synth import CHORDS, D2, PENTATONIC, RATE, Synth

DEFAULT = SoundSettings()


@pytest.fixture(scope="module")
def frames(tiny_llama):
    gen = GenerationSettings(max_tokens=8, temperature=0.0)
    return list(generate_frames(tiny_llama, "A lighthouse at night", gen, CaptureSettings()))


def _play(frames, gap_s: float = 0.1, settings: SoundSettings = DEFAULT) -> np.ndarray:
    synth, parts = Synth(settings), []
    for frame in frames:
        synth.cue(frame)
        parts.append(synth.render(round(gap_s * RATE)))
    return np.concatenate(parts)


def _band_energy(x: np.ndarray, low: float, high: float) -> float:
    spectrum = np.abs(np.fft.rfft(x[:, 0] * np.hanning(len(x)))) ** 2
    hz = np.fft.rfftfreq(len(x), 1 / RATE)
    return float(spectrum[(hz >= low) & (hz < high)].sum())


def test_the_same_frames_give_the_same_samples(frames):
    a, b = _play(frames), _play(frames)
    assert np.array_equal(a, b)
    assert a.dtype == np.float32 and np.isfinite(a).all()
    assert 0.01 < np.abs(a).max() <= 1.0


def test_a_fork_continues_exactly_like_the_original(frames):
    synth = Synth(SoundSettings())
    for frame in frames[:5]:
        synth.cue(frame)
        synth.render(3000)
    twin = synth.fork()
    assert twin.position == 0
    for frame in frames[5:]:
        for s in (synth, twin):
            s.cue(frame)
        assert np.array_equal(synth.render(2000), twin.render(2000))


def test_a_token_plucks_the_note_its_id_picks_when_it_is_cued(frames):
    prompt = [f for f in frames if f.is_prompt]
    token = next(f for f in frames if not f.is_prompt)
    synth = Synth(structs.replace(SoundSettings(), echo=0.0, breath=0.0))
    for frame in prompt:
        synth.cue(frame)
    before = synth.render(RATE // 2)
    synth.cue(token)
    after = synth.render(RATE // 5)
    degree = token.token_id % 10
    note = 4 * D2 * 2 ** ((PENTATONIC[degree % 5] + 12 * (degree // 5)) / 12)
    spectrum = np.abs(np.fft.rfft(after[:, 0] * np.hanning(len(after))))
    hz = np.fft.rfftfreq(len(after), 1 / RATE)
    above_drone = hz > 280
    assert hz[above_drone][np.argmax(spectrum[above_drone])] == pytest.approx(note, rel=0.02)
    onset = RATE // 50  # the first 20 ms after the cue already carry the strike
    assert _band_energy(after[:onset], 280, 4000) > 5 * _band_energy(before[-onset:], 280, 4000)


def test_higher_entropy_breathes_louder_and_brighter(frames):
    calm = [replace(f, entropy=0.1) for f in frames]
    unsure = [replace(f, entropy=4.0) for f in frames]
    quiet = structs.replace(SoundSettings(), drone=0.0, plucks=0.0, bells=0.0, echo=0.0)
    a, b = _play(calm, settings=quiet), _play(unsure, settings=quiet)
    assert _band_energy(b, 3000, 9000) > 4 * _band_energy(a, 3000, 9000)


def test_a_token_far_below_the_model_s_favourite_rings_a_bell(frames):
    prompt = [f for f in frames if f.is_prompt]
    token = next(f for f in frames if not f.is_prompt)

    def ringing(ranked: list[int], probs: list[float]) -> float:
        """Sound energy 0.5–1 s after `token`, when the frame before ranked these candidates:
        the pluck has died away by then, a bell rings for seconds."""
        before = replace(prompt[-1], topk_ids=np.array(ranked),
                         topk_probs=np.array(probs, np.float32))  # fmt: skip
        plain = structs.replace(SoundSettings(), drone=0.0, breath=0.0, echo=0.0)
        heard = _play([*prompt[:-1], before, token], gap_s=1.0, settings=plain)[-RATE:]
        return _band_energy(heard[RATE // 2 :], 200, 12000)

    t = token.token_id
    taken = ringing([t, 7, 8], [0.9, 0.05, 0.05])  # the favourite
    near_tie = ringing([7, t, 8], [0.5, 0.45, 0.05])  # a flip, but no surprise
    surprise = ringing([7, t, 8], [0.7, 0.2, 0.1])  # under half the favourite's probability
    assert surprise > 4 * taken and surprise > 4 * near_tie


def test_a_band_of_layers_that_writes_more_sings_louder(frames):
    prompt = [f for f in frames if f.is_prompt]
    last = prompt[-1]
    louder = last.hidden.copy()
    louder[-1] = louder[-2] + 8 * (louder[-1] - louder[-2])  # the top block writes 8× as much
    loud_top = replace(last, hidden=louder)
    only_drone = structs.replace(SoundSettings(), plucks=0.0, breath=0.0, bells=0.0, echo=0.0)
    normal = _play([*prompt, last], gap_s=0.5, settings=only_drone)[-RATE // 4 :]
    boosted = _play([*prompt, loud_top], gap_s=0.5, settings=only_drone)[-RATE // 4 :]
    top_voice = D2 * 2 ** (CHORDS[0][-1] / 12)  # the top block sings the chord's highest note
    low_voice = D2 * 2 ** (CHORDS[0][0] / 12)  # the bottom block, unchanged
    gain = {}
    for name, hz in (("top", top_voice), ("low", low_voice)):
        band = (hz * 0.97, hz * 1.03)
        gain[name] = _band_energy(boosted, *band) / _band_energy(normal, *band)
    assert gain["top"] > 2 and gain["top"] > 2 * gain["low"]


def test_it_falls_silent_when_the_model_stops(frames):
    """A speaker can talk over an idle demo: a minute after the last token, nothing is heard."""
    synth = Synth(DEFAULT)
    for frame in frames:
        synth.cue(frame)
        synth.render(RATE // 10)
    during = np.sqrt(np.mean(synth.render(RATE) ** 2))
    synth.render(58 * RATE)
    after = np.sqrt(np.mean(synth.render(RATE) ** 2))
    assert during > 0.01 and after < during / 1000


SPEAKERS_ON = """
import sys, time
from visualizer.config import SoundSettings
from visualizer.sound.speakers import Speakers
speakers, why = Speakers.open(SoundSettings(device=sys.argv[1]))
if speakers is None:
    print(why)
    raise SystemExit(3)
for _ in range(40):  # about a second of chunks
    speakers.pump()
    time.sleep(0.02)
speakers.close()
"""


def test_the_sound_goes_to_the_output_named_and_the_outputs_are_listed(tmp_path):
    """SDL's disk driver stands in for a sound card: its one output is listed by
    `run --audio-device list`, a name it lacks is refused in one line, and the speakers opened
    on the named output play into its file."""
    import os
    import subprocess
    import sys

    from tests.test_cli import _assert_user_error, neuroweb

    raw = tmp_path / "speakers.raw"
    env = {**os.environ, "SDL_AUDIODRIVER": "disk", "SDL_DISKAUDIOFILE": str(raw)}
    listed = neuroweb("run", "--audio-device", "list", env=env)
    assert listed.returncode == 0, listed.stderr
    name = "System audio output device"
    assert listed.stdout.splitlines() == [name]
    _assert_user_error(neuroweb("run", "--audio-device", "Headphones", env=env),
                       f"--audio-device Headphones: no such sound output (there are: {name})")
    played = subprocess.run([sys.executable, "-c", SPEAKERS_ON, name], env=env,
                            capture_output=True, text=True, timeout=60)  # fmt: skip
    assert played.returncode == 0, played.stdout + played.stderr
    assert raw.stat().st_size > 48_000  # stereo 16-bit samples, more than an eighth of a second
    missing = subprocess.run([sys.executable, "-c", SPEAKERS_ON, "Headphones"], env=env,
                             capture_output=True, text=True, timeout=60)  # fmt: skip
    assert missing.returncode == 3  # a preset's name that is not there: silent, and said
    assert f"no sound device named 'Headphones' (there are: {name})" in missing.stdout
