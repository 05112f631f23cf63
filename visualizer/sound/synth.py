"""The soundtrack: a small synthesiser that the frames play.

The caller decides when each token sounds: render up to that moment, then `cue` the frame. The
same frames cued at the same sample positions give the same samples (the noise comes from a
fixed seed), so an offline render's soundtrack is exact and repeatable.

The parts (docs/sound.md says why):
- Drone: one voice per band of consecutive layers, low layers singing low, tuned to a chord. A
  voice's loudness follows how much its layers write into the residual stream for this token,
  against their own recent past; its brightness (overtones) follows the share of the stream
  their MLPs wrote. At the end of a sentence the chord moves on (D minor → B♭ → F → C).
- Pluck: each generated token plucks a note of D minor pentatonic picked by its token id, so a
  word always has the same note; it rings louder the surer the model was of it.
- Breath: noise whose level and brightness follow the next-token entropy.
- Bell: when the token taken was not the model's first choice (a top-1 flip) and had less than
  half its probability (a real surprise, not a near tie), an FM bell.
- Space: a stereo ping-pong echo, then a soft limiter.
"""

import copy
import math

import numpy as np

from visualizer import measures
from visualizer.config import SoundSettings
from visualizer.frame import Frame
from visualizer.running_norm import RunningNorm

RATE = 48000
BLOCK = 1024  # samples per step: pitch glides and easing are exact within one; notes are vectorised
D2 = 73.416  # Hz; the drone's root, and the plucks two octaves up
CHORDS = (  # semitones above D2, one per drone voice, low → high
    (0, 7, 12, 15, 19, 26),  # D minor (add 9): D2 A2 D3 F3 A3 E4
    (-4, 3, 8, 12, 15, 22),  # B♭ major: B♭1 F2 B♭2 D3 F3 C4
    (3, 10, 15, 19, 22, 29),  # F major: F2 C3 F3 A3 C4 G4
    (-2, 5, 10, 14, 17, 24),  # C major: C2 G2 C3 E3 G3 D4
)
VOICES = len(CHORDS[0])
VOICE_WEIGHT = np.array([1.0, 0.85, 0.7, 0.55, 0.45, 0.35])  # low voices carry, high ones shimmer
PENTATONIC = (0, 3, 5, 7, 10)  # D F G A C
SENTENCE_END = (".", "!", "?", "\n")
GLIDE_S = 0.35  # the drone's pitch glide to a new chord
EASE_S = 0.15  # the drone's loudness and timbre ease toward each token's values
IDLE_S = 2.5  # after the last token the drone relaxes to IDLE_FLOOR of its loudness…
IDLE_FLOOR = 0.25
SILENCE_S = 10.0  # …and then, with this time constant, to silence (a speaker talks over it)
ECHO_S = 0.33
NOISE_SAMPLES = 1 << 17  # the breath loops through this much pre-filtered noise (2.7 s)
BELL_SURPRISE = 0.5  # a bell when the token had under half the favourite's probability
GAIN = {"drone": 0.11, "pluck": 0.16, "breath": 0.025, "bell": 0.07}


class _Notes:
    """The struck sounds still ringing (plucks and bells), rendered together; each is dropped
    once it has decayed below -50 dB."""

    FIELDS = ("freq", "amp", "pan", "decay", "bell", "age")

    def __init__(self) -> None:
        self.table = np.zeros((0, len(self.FIELDS)))  # one row per note

    def strike(self, freq: float, amp: float, pan: float, decay_s: float, bell: bool) -> None:
        self.table = np.vstack([self.table, [freq, amp, pan, decay_s, float(bell), 0.0]])

    def render(self, n: int, rate: int) -> np.ndarray:
        if not len(self.table):
            return np.zeros((n, 2))
        freq, amp, pan, decay, bell, age = (c[:, None] for c in self.table.T)
        t = (age + np.arange(n)[None, :]) / rate  # [notes, n]
        env = amp * np.minimum(t / 0.004, 1.0) * np.exp(-t / decay)
        phase = 2 * np.pi * freq * t
        wave = np.empty_like(t)
        bells = bell[:, 0] > 0
        p, q = phase[bells], t[bells]  # inharmonic FM: modulator at √2 × carrier, index dying
        wave[bells] = _sin(p + 1.5 * np.exp(-q / 0.35) * _sin(np.sqrt(2) * p))
        p, q = phase[~bells], t[~bells]  # a soft mallet: the fundamental, an octave fading fast
        wave[~bells] = _sin(p) * (1 + 0.7 * np.exp(-q / 0.08) * _sin(p + np.pi / 2))
        wave *= env
        angle = (pan + 1) * np.pi / 4  # [notes, 1]
        out = np.stack([(wave * np.cos(angle)).sum(0), (wave * np.sin(angle)).sum(0)], axis=1)
        self.table[:, 5] += n
        alive = self.table[:, 5] < 5.75 * self.table[:, 3] * rate
        self.table = self.table[alive]
        return out


class Synth:
    """Frames in (`cue`), stereo float32 samples in -1..1 out (`render`)."""

    def __init__(self, settings: SoundSettings, rate: int = RATE, seed: int = 0) -> None:
        self.settings, self.rate = settings, rate
        self.position = 0  # samples rendered
        self._write_norm, self._mlp_norm = RunningNorm(), RunningNorm()
        self._chord = 0
        self._freq = self._chord_freqs()  # [VOICES] current pitch (gliding)
        self._phase = np.zeros((VOICES, 2))  # [voice, channel]
        self._level = np.zeros(VOICES)  # loudness, eased
        self._level_target = np.zeros(VOICES)
        self._bright = np.zeros(VOICES)  # 0..1 overtone share, eased
        self._bright_target = np.zeros(VOICES)
        self._activity = 0.0  # 1 at each token, relaxing toward 0 over IDLE_S
        self._presence = 0.0  # 1 at each token, relaxing toward 0 over SILENCE_S
        self._breath = 0.0
        self._breath_target = 0.0
        self._hiss = 0.0  # 0 = dark breath, 1 = bright
        self._hiss_target = 0.0
        self._notes = _Notes()
        self._last_topk: tuple[np.ndarray, np.ndarray] | None = None
        self._dark, self._bright_noise = _noise_tables(seed, rate)
        self._noise_at = 0
        self._echo = np.zeros((max(BLOCK, round(ECHO_S * rate)), 2))
        self._echo_at = 0

    def fork(self) -> "Synth":
        """A copy that continues from this state with its own clock at sample 0 (a recording
        started mid-answer sounds like the speakers, not like a cold start)."""
        twin = copy.deepcopy(self)
        twin.position = 0
        return twin

    # --- frames ---------------------------------------------------------------------------

    def cue(self, frame: Frame) -> None:
        """The frame sounds from the next sample rendered."""
        write, mlp = _layer_bands(frame)
        self._level_target = self._write_norm(write[None, :])[0].astype(np.float64)
        self._bright_target = self._mlp_norm(mlp[None, :])[0].astype(np.float64)
        entropy = min(max(frame.entropy / 4.0, 0.0), 1.0)
        self._breath_target, self._hiss_target = 0.15 + 0.85 * entropy, entropy
        self._activity = self._presence = 1.0
        if not frame.is_prompt:
            self._strike(frame)
            if any(mark in frame.text for mark in SENTENCE_END):
                self._chord = (self._chord + 1) % len(CHORDS)
        self._last_topk = (frame.topk_ids, frame.topk_probs)

    def _strike(self, frame: Frame) -> None:
        degree = frame.token_id % 10
        semis = PENTATONIC[degree % 5] + 12 * (degree // 5)
        freq = 4 * D2 * 2 ** (semis / 12)
        pan = degree / 9 * 1.4 - 0.7
        sure, surprise = 0.05, 0.0  # surprise: how far below the favourite the token was
        if self._last_topk is not None:
            ids, probs = self._last_topk
            hits = np.flatnonzero(ids == frame.token_id)
            sure = float(probs[hits[0]]) if hits.size else 0.0
            surprise = 1.0 - sure / max(float(probs[0]), 1e-9)
        pluck = GAIN["pluck"] * self.settings.plucks * (0.3 + 0.7 * sure)
        self._notes.strike(freq, pluck, pan, 0.4, bell=False)
        if surprise > BELL_SURPRISE:  # the sampler took another road than the model's favourite
            bell = GAIN["bell"] * self.settings.bells * surprise
            self._notes.strike(2 * freq, bell, -pan, 0.9, bell=True)

    # --- samples --------------------------------------------------------------------------

    def render(self, n: int) -> np.ndarray:
        """The next `n` samples, [n, 2] float32."""
        out = np.empty((n, 2), np.float32)
        done = 0
        while done < n:
            step = min(BLOCK, n - done)
            out[done : done + step] = self._block(step)
            done += step
        self.position += n
        return out

    def render_until(self, sample: int) -> np.ndarray:
        """Samples up to (not including) position `sample`; none if already there."""
        return self.render(max(0, sample - self.position))

    def _block(self, n: int) -> np.ndarray:
        s, rate = self.settings, self.rate
        t = np.arange(1, n + 1) / rate
        ease = np.exp(-t / EASE_S)[None, :]  # [1, n]
        level = self._level_target[:, None] + (self._level - self._level_target)[:, None] * ease
        bright = self._bright_target[:, None] + (self._bright - self._bright_target)[:, None] * ease
        self._level, self._bright = level[:, -1], bright[:, -1]
        activity = self._activity * np.exp(-t / IDLE_S)
        presence = self._presence * np.exp(-t / SILENCE_S)
        self._activity, self._presence = activity[-1], presence[-1]
        awake = IDLE_FLOOR * presence + (1 - IDLE_FLOOR) * activity

        target = self._chord_freqs()[:, None]
        freq = target * (self._freq[:, None] / target) ** np.exp(-t / GLIDE_S)[None, :]
        self._freq = freq[:, -1]
        detune = np.array([0.998, 1.002])  # a slow beat between the ears: width
        step = 2 * math.pi * freq[:, None, :] * detune[None, :, None] / rate  # [V, 2, n]
        phase = self._phase[:, :, None] + np.cumsum(step, axis=2)
        self._phase = np.mod(phase[:, :, -1], 2 * math.pi)
        b = bright[:, None, :]
        sine, cosine = _sin(phase), _sin(phase + np.pi / 2)  # overtones from these: cheaper
        wave = sine * (1 + b * cosine + 0.3 * b**2 * (3 - 4 * sine**2))
        loud = level * (0.2 + 1.3 * level) * awake[None, :]
        loud *= VOICE_WEIGHT[:, None] * GAIN["drone"] * s.drone
        mix = np.einsum("vcn,vn->nc", wave, loud)

        breath = self._breath_target + (self._breath - self._breath_target) * ease[0]
        hiss = self._hiss_target + (self._hiss - self._hiss_target) * ease[0]
        self._breath, self._hiss = breath[-1], hiss[-1]  # (before `breath` is scaled below)
        at = (self._noise_at + np.arange(n)) % len(self._dark)
        self._noise_at = (self._noise_at + n) % len(self._dark)
        noise = (1 - hiss)[:, None] * self._dark[at] + hiss[:, None] * self._bright_noise[at]
        breath *= (0.3 * presence + 0.7 * activity) * GAIN["breath"] * s.breath
        mix += noise * breath[:, None]

        mix += self._notes.render(n, rate)
        return np.tanh(self._echoed(mix) * s.volume * 1.5) / 1.5

    def _echoed(self, dry: np.ndarray) -> np.ndarray:
        """Ping-pong echo: what went in ECHO_S ago comes back from the other side."""
        n, size = len(dry), len(self._echo)
        at = (self._echo_at + np.arange(n)) % size
        back = self._echo[at]  # written ECHO_S ago
        self._echo[at] = dry + self.settings.echo * back[:, ::-1]
        self._echo_at = (self._echo_at + n) % size
        return dry + self.settings.echo * back

    def _chord_freqs(self) -> np.ndarray:
        return D2 * 2 ** (np.array(CHORDS[self._chord]) / 12)


def pcm16(samples: np.ndarray) -> bytes:
    """Float samples in -1..1 → little-endian 16-bit PCM, as WAV files and the mixer take it."""
    return np.clip(np.round(samples * 32767), -32768, 32767).astype("<i2").tobytes()


def _sin(x: np.ndarray) -> np.ndarray:
    """sin, in float32 after reducing the angle in float64: the same to well below hearing,
    and many times faster than numpy's float64 sin."""
    turns = np.floor(x * (1 / (2 * np.pi)))  # np.remainder is ten times slower than this
    return np.sin((x - 2 * np.pi * turns).astype(np.float32))


def _layer_bands(frame: Frame) -> tuple[np.ndarray, np.ndarray]:
    """Per drone voice: how much its band of blocks changed the residual stream (relative to
    what they read), and how large a share of it their MLPs wrote."""
    write = measures.update_ratio(frame)  # [L]
    mlp = measures.mlp_share(frame)  # [L]
    layers = len(write)
    bands = [
        slice(v * layers // VOICES, max(v * layers // VOICES + 1, (v + 1) * layers // VOICES))
        for v in range(VOICES)
    ]
    return (np.array([write[b].mean() for b in bands]), np.array([mlp[b].mean() for b in bands]))


def _noise_tables(seed: int, rate: int) -> tuple[np.ndarray, np.ndarray]:
    """Two loops of stereo noise with unit RMS, each a band an octave or so wide: dark (around
    700 Hz, a breath) and bright (around 5 kHz, a hiss)."""
    white = np.random.default_rng(seed).standard_normal((NOISE_SAMPLES, 2))
    spectrum = np.fft.rfft(white, axis=0)
    hz = np.fft.rfftfreq(NOISE_SAMPLES, 1 / rate)[:, None]
    tables = []
    octaves = np.log2(np.maximum(hz, 1.0))
    for centre in (700, 5000):
        shape = np.exp(-0.5 * ((octaves - np.log2(centre)) / 0.7) ** 2)
        noise = np.fft.irfft(spectrum * shape, NOISE_SAMPLES, axis=0)
        tables.append(noise / np.sqrt(np.mean(noise**2)))
    return tables[0], tables[1]
