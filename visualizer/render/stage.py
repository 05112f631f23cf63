"""What the hall sees between scenes: the crossfade from the neural web to the architecture
scene and back, and the blackout (B, or a clicker's blank-screen key). Each is asked for at
once and eased each frame, so no cut is ever a flash."""

from visualizer.config import SCENES

CROSSFADE_S = 0.6  # switching scenes
BLACKOUT_S = 0.5  # the fade to black and back


class Stage:
    def __init__(self, scene: str) -> None:
        self.target = float(SCENES.index(scene))  # 0 web, 1 architecture
        self.mix = self.target  # shown: eases toward the target
        self.blackout = False  # asked for; `darkness` eases toward it, 0 to 1
        self.darkness = 0.0

    def show(self, scene: str) -> None:
        """Crossfade to a scene ("web" or "architecture")."""
        self.target = float(SCENES.index(scene))

    def advance(self, dt: float) -> None:
        step = dt / CROSSFADE_S
        self.mix = min(max(self.target, self.mix - step), self.mix + step)
        step, dark = dt / BLACKOUT_S, float(self.blackout)
        self.darkness = min(max(dark, self.darkness - step), self.darkness + step)

    @property
    def still(self) -> bool:
        """Neither fade under way."""
        return self.mix == self.target and self.darkness == float(self.blackout)
