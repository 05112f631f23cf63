"""The room a picture is shown in, as the layers that set words need it: the graphics-safe area
every text and panel stays inside, and the smallest text its farthest viewer can read.

EBU R95 keeps graphics 5 % in from every edge: a projector or a screen that overscans cuts off
what lies outside. The AV industry's sizing rule makes the smallest element that carries
meaning at least the farthest viewer's distance ÷ 200 of the picture's height (config.py's
`[venue]`, in screen heights): 1 % at a desk (2 screen heights), 2 % in a gallery (4), 3 % at a
talk (6). Text that carries meaning is drawn at least that large; a smaller label, a reward
for a close look (`detail`), is left out where it would be smaller.

Luminance first: what carries meaning is told apart by its light, not by a dark fill of
another hue. By WCAG 2.2's contrast formula, a mark (a stroke, a step, a bar) stands at least
3:1 from what lies around it (1.4.11), text 4.5:1 (1.4.3) and 7:1 on a projector (1.4.6: a
projector in a lit hall washes its blacks out); on a projector nothing that carries meaning
is darker than 5 % relative luminance. `legible` and `quiet` make a look's colour meet that;
colours here are sRGB in 0..1 and blend as the painter blends them (`over`).
"""

import math
from dataclasses import dataclass

from visualizer.config import VenueSettings

SAFE = 0.05  # of the width and of the height, from each edge
RULE = 200  # the farthest viewer's distance ÷ this: the smallest text's height
DESK = VenueSettings()  # the operator's distance: the HUD is read at the desk, in every venue
MARK, TEXT, PROJECTED_TEXT = 3.0, 4.5, 7.0  # the least contrast ratios (WCAG 2.2)
LIT = 0.05  # on a projector, the least relative luminance of what carries meaning
RGB = tuple[float, float, float]


def luminance(colour: RGB) -> float:
    """WCAG 2.2's relative luminance of an sRGB colour."""
    linear = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in colour]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast(a: RGB, b: RGB) -> float:
    """WCAG 2.2's contrast ratio, 1 to 21."""
    la, lb = sorted((luminance(a), luminance(b)))
    return (lb + 0.05) / (la + 0.05)


def over(colour: tuple[float, ...], ground: RGB) -> RGB:
    """`colour` (RGBA) laid over `ground` as the painter blends it."""
    a = colour[3] if len(colour) > 3 else 1.0
    return tuple(c * a + g * (1 - a) for c, g in zip(colour[:3], ground, strict=True))


def _mix(a: RGB, b: RGB, t: float) -> RGB:
    return tuple(x + (y - x) * t for x, y in zip(a, b, strict=True))


def _meets(colour: RGB, ground: RGB, ratio: float, floor: float) -> bool:
    return contrast(colour, ground) >= ratio and luminance(colour) >= floor


def legible(colour: RGB, ground: RGB, ratio: float, floor: float = 0.0) -> RGB:
    """`colour` as it is where it stands `ratio` from `ground` with at least `floor`
    luminance; else mixed toward white (black on a light ground), no further than it must."""
    if _meets(colour, ground, ratio, floor):
        return colour
    far = (0.0,) * 3 if luminance(ground) > 0.5 and floor == 0 else (1.0,) * 3
    low, high = 0.0, 1.0
    for _ in range(24):
        t = (low + high) / 2
        low, high = (low, t) if _meets(_mix(colour, far, t), ground, ratio, floor) else (t, high)
    return _mix(colour, far, high)


def quiet(colour: RGB, ground: RGB, ratio: float, floor: float = 0.0) -> RGB:
    """The dimmest mix of `ground` toward `colour` that still stands `ratio` from it (with
    `floor` luminance): a mark at rest, lit no more than it must be; `legible` past `colour`."""
    if not _meets(colour, ground, ratio, floor):
        return legible(colour, ground, ratio, floor)
    low, high = 0.0, 1.0
    for _ in range(24):
        t = (low + high) / 2
        low, high = (low, t) if _meets(_mix(ground, colour, t), ground, ratio, floor) else (t, high)
    return _mix(ground, colour, high)


@dataclass(frozen=True)
class Room:
    size: tuple[int, int]  # the output's pixels
    floor: float  # the smallest text, a fraction of the height
    projector: bool = False  # shown by a projector: text 7:1, nothing meant under 5 %

    @classmethod
    def of(cls, size: tuple[int, int], venue: VenueSettings) -> "Room":
        return cls(size, venue.farthest_viewer / RULE, venue.projector)

    @property
    def text_ratio(self) -> float:
        """The least contrast of text against what it is drawn on."""
        return PROJECTED_TEXT if self.projector else TEXT

    @property
    def lit(self) -> float:
        """The least relative luminance of anything that carries meaning."""
        return LIT if self.projector else 0.0

    @property
    def stroke(self) -> float:
        """A mark's line width in pixels: 2 at 1080p, never under one."""
        return max(1.0, self.size[1] / 540)

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
