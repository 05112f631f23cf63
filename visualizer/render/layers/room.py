"""The room a picture is shown in, as the layers that set words need it: the graphics-safe area
every text and panel stays inside, and the smallest text its farthest viewer can read.

EBU R95 keeps graphics 5 % in from every edge: a projector or a screen that overscans cuts off
what lies outside. The AV industry's sizing rule makes the smallest element that carries
meaning at least the farthest viewer's distance ÷ 200 of the picture's height (config.py's
`[venue]`, in screen heights): 1 % at a desk (2 screen heights), 2 % in a gallery (4), 3 % at a
talk (6). Text that carries meaning is drawn at least that large; a smaller label, a reward
for a close look (`detail`), is left out where it would be smaller.
"""

import math
from dataclasses import dataclass

from visualizer.config import VenueSettings

SAFE = 0.05  # of the width and of the height, from each edge
RULE = 200  # the farthest viewer's distance ÷ this: the smallest text's height
DESK = VenueSettings()  # the operator's distance: the HUD is read at the desk, in every venue


@dataclass(frozen=True)
class Room:
    size: tuple[int, int]  # the output's pixels
    floor: float  # the smallest text, a fraction of the height

    @classmethod
    def of(cls, size: tuple[int, int], venue: VenueSettings) -> "Room":
        return cls(size, venue.farthest_viewer / RULE)

    @property
    def left(self) -> float:
        return SAFE * self.size[0]

    @property
    def right(self) -> float:
        return self.size[0] - self.left

    @property
    def top(self) -> float:
        return SAFE * self.size[1]

    @property
    def bottom(self) -> float:
        return self.size[1] - self.top

    @property
    def width(self) -> float:
        return self.right - self.left

    @property
    def least(self) -> int:
        """The smallest font size (pixels) that reads from the back of the room."""
        return math.ceil(self.floor * self.size[1] - 1e-6)

    def type(self, fraction: float) -> int:
        """Text that carries meaning, `fraction` of the height: never under the floor."""
        return max(round(fraction * self.size[1]), self.least)

    def detail(self, fraction: float) -> int | None:
        """A label for a close look, `fraction` of the height; None where it would be under
        the floor (it is left out)."""
        size = round(fraction * self.size[1])
        return size if size >= self.least else None

    def desk(self) -> "Room":
        """This room as the operator at a desk reads it (the HUD)."""
        return Room.of(self.size, DESK)
