"""The `glitch` mood ("what it is like to be an LLM"): each new token may cut the camera to a
new angle, stutter the picture for a few frames, flash its word across the screen and split
the colours apart. `look.glitch` sets how much (0: none of it).

Chance decides per token, from a generator seeded by the token's position, so a render of the
same trace glitches the same way every time. The word flashes strobe at the token rate; the
flash limiter is what keeps that within three flashes a second.
"""

import math
import random

from visualizer.features import SceneState
from visualizer.render.camera import Camera

CUT = 0.35  # chance per token, times look.glitch, of a jump cut
STUTTER = 0.2  # … of a stutter: the picture holds for STUTTER_S
STUTTER_S = 0.12
FLASH = 0.6  # … of the word flashing across the screen
FLASH_S = 0.1
SPLIT_PX = 0.012  # the colour split's greatest offset, as a share of the width


class Glitch:
    def __init__(self, amount: float) -> None:
        self.amount = amount
        self.flash = 0.0  # 1 as a word flash starts, fading to 0 over FLASH_S
        self.word = ""
        self.split = 0.0  # colour split, a share of the width
        self._seen = 0
        self._hold = 0.0

    def step(self, scene: SceneState, camera: Camera, dt: float) -> float:
        """React to tokens that arrived since the last frame; returns the time step the scene
        should advance by (0 while the picture stutters)."""
        if self.amount <= 0:
            return dt
        if scene.tokens_seen != self._seen and scene.tokens:
            self._seen = scene.tokens_seen
            self._token(scene, camera)
        self.flash = max(0.0, self.flash - dt / FLASH_S)
        self.split = self.amount * SPLIT_PX * max(scene.pulse, self.flash)
        if self._hold > 0:
            self._hold -= dt
            return 0.0
        return dt

    def _token(self, scene: SceneState, camera: Camera) -> None:
        token = scene.tokens[-1]
        chance = random.Random(token.index * 7919 + 17)
        if chance.random() < CUT * self.amount:
            camera.yaw += math.radians(chance.uniform(50, 160)) * chance.choice((-1, 1))
            camera.pitch = chance.uniform(-0.2, 0.9)
            camera.distance = chance.uniform(6.0, 12.0)
        if chance.random() < STUTTER * self.amount:
            self._hold = STUTTER_S
        if chance.random() < FLASH * self.amount and token.text.strip():
            self.flash, self.word = 1.0, token.text.strip()
