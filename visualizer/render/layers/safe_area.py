"""The graphics-safe area's frame, over every scene, only when the look asks for it
(look.safe_area): a projector that overscans cuts off what lies outside it, so an operator
lines the projector up until the whole frame shows. EBU R95 keeps graphics 5 % in from
every edge; the frame's inner edge is that line."""

from visualizer.config import rgb
from visualizer.render.layers.layer import Kit, Layer, LayerInput
from visualizer.render.layers.room import SAFE as MARGIN  # of the width and height, each edge

LINE = 0.002  # of the height: 2 px at 1080p, never thinner than 2


class SafeArea(Layer):
    stage = "chrome"

    def __init__(self, kit: Kit) -> None:
        self.painter, self.shown = kit.painter, kit.look.safe_area
        self.colour = (*rgb(kit.look.text), 0.6)

    def draw(self, frame: LayerInput) -> None:
        if not self.shown:
            return
        w, h = frame.size
        t = max(2, round(LINE * h))
        left, top = round(MARGIN * w), round(MARGIN * h)  # on whole pixels: crisp lines
        right, bottom = w - left, h - top
        p = self.painter
        p.begin(frame.size)
        p.rect(left - t, top - t, right - left + 2 * t, t, self.colour)  # top, over the corners
        p.rect(left - t, bottom, right - left + 2 * t, t, self.colour)  # bottom
        p.rect(left - t, top, t, bottom - top, self.colour)  # left
        p.rect(right, top, t, bottom - top, self.colour)  # right
        p.flush()
