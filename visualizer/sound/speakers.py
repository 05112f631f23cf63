"""The live window's sound: the synthesiser played through pygame.mixer, a chunk at a time.

pygame has no audio callback, so the render loop feeds one mixer channel: whenever the channel's
queue slot is free, `pump` synthesises the next CHUNK samples and queues them. The synth's clock
is the sound card's (samples played), so what is heard never drifts from what is made. A token
is cued into the next chunk made, so it sounds between one and two chunks (43–85 ms at 48 kHz)
plus the device's own buffer after the frame that shows it; the loop must come round within a
chunk or the sound drops out for a moment (at 20 fps and up it does).
"""

import contextlib
import ctypes
import ctypes.util
import functools
import os
import sys

import pygame

from visualizer.config import SoundSettings
from visualizer.frame import Frame
from visualizer.sound.synth import RATE, Synth, pcm16

CHUNK = 2048  # samples per queued sound
DEVICE_BUFFER = 512  # samples in SDL's own buffer


class Speakers:
    def __init__(self, settings: SoundSettings) -> None:
        """Opens the sound device; raises pygame.error when there is none."""
        with _quiet_stderr():  # ALSA prints a page of C-level errors when there is no card
            # allowedchanges=0: exactly this format; SDL converts for the device if it must
            pygame.mixer.init(
                frequency=RATE, size=-16, channels=2, buffer=DEVICE_BUFFER, allowedchanges=0,
                devicename=settings.device or None,
            )
        self.synth = Synth(settings, rate=RATE)
        self.muted = False
        self._channel = pygame.mixer.Channel(0)

    @classmethod
    def open(cls, settings: SoundSettings) -> "tuple[Speakers | None, str]":
        """Speakers, or None and why not (sound off in the preset, or no sound device)."""
        if not settings.enabled:
            return None, "sound is off in the preset"
        if settings.device and settings.device not in (there := output_devices()):
            named = "; ".join(there) or "none opens here"
            return None, f"no sound device named {settings.device!r} (there are: {named}): silent"
        _keep_alsa_loaded()
        try:
            return cls(settings), ""
        except pygame.error as exc:
            return None, f"no sound device ({exc}): silent here, recordings still get sound"

    def cue(self, frame: Frame) -> None:
        self.synth.cue(frame)

    def pump(self) -> None:
        """Keep a chunk playing and the next one queued; call once per frame."""
        while self._channel.get_queue() is None:
            sound = pygame.mixer.Sound(buffer=pcm16(self.synth.render(CHUNK)))
            if self._channel.get_busy():
                self._channel.queue(sound)
            else:
                self._channel.play(sound)

    def toggle_mute(self) -> bool:
        """Mute or unmute the speakers (the synth plays on, silently); True when now muted."""
        self.muted = not self.muted
        self._channel.set_volume(0.0 if self.muted else 1.0)
        return self.muted

    def close(self) -> None:
        self._channel.stop()
        pygame.mixer.quit()


def output_devices() -> list[str]:
    """The names of the sound outputs there are, as SDL knows them ([] when none opens)."""
    from pygame._sdl2 import audio

    _keep_alsa_loaded()
    with _quiet_stderr():
        try:
            pygame.mixer.init()
            return list(audio.get_audio_device_names(False))
        except pygame.error:
            return []
        finally:
            pygame.mixer.quit()


@functools.cache
def _keep_alsa_loaded() -> ctypes.CDLL | None:
    """Hold ALSA's library open for the life of the process.

    SDL loads libasound for each open of the sound device and unloads it after a failed one;
    each load parses ALSA's configuration anew and the old parse is never freed, about 100 kB
    a try. A kiosk without a sound card looks for one every half minute, which made this the
    soak's main memory growth. While we hold the library (the cache keeps its handle), ALSA
    keeps one parse and reuses it."""
    name = ctypes.util.find_library("asound")
    try:
        return ctypes.CDLL(name) if name is not None else None
    except OSError:
        return None


@contextlib.contextmanager
def _quiet_stderr():
    """File descriptor 2 goes to /dev/null for the duration (C libraries write there)."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
