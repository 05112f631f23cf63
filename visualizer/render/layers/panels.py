"""What the 2D text layers share (`web_text.WebText`, the web's words; `chrome.Chrome`, what
every scene shows on top): the painter, the look's colours, and lines of text set one under
another.

Sizes are fractions of the window height, so the text reads the same at 720p and on a 4K stage
screen; the answer's height is `look.text_size` (5 % by default: about 54 px at 1080p).
"""

from visualizer.config import rgb
from visualizer.render.layers.layer import Kit, Layer, LayerInput

RED = (1.0, 0.35, 0.35, 1.0)  # errors, and what an intervention switched off


class Panel(Layer):
    """A layer of 2D text, drawn with the shared painter in the look's colours."""

    def __init__(self, kit: Kit) -> None:
        look = kit.look
        self.painter, self.look = kit.painter, look
        self.text = (*rgb(look.text), 1.0)
        self.dim = (*rgb(look.text), 0.55)
        self.faint = (*rgb(look.text), 0.4)  # the untouched run, beside a changed one
        self.accent = (*rgb(look.accent), 1.0)
        self.ink = (*rgb(look.background), 1.0)  # text on the accent colour

    def begin(self, frame: LayerInput) -> tuple[int, int]:
        """The painter at the output's size, which is returned (text is placed in its pixels)."""
        self.painter.begin(frame.size)
        return frame.size

    def _lines(self, lines, x, y, size, colour, anchor="left", box=False, upward=False):
        """The lines from (x, y); returns the left edge of the widest."""
        step = round(size * 1.3)
        width = max((self.painter.fonts.width(line, size) for line in lines), default=0)
        left = x - {"left": 0.0, "center": width / 2, "right": width}[anchor]
        if box and lines:
            self.painter.rect(left - size * 0.4, y - size * 0.3, width + size * 0.8,
                              step * len(lines) + size * 0.4, (0, 0, 0, 0.55))  # fmt: skip
        for i, line in enumerate(lines):
            dy = -step * (len(lines) - 1 - i) if upward else step * i
            self.painter.text(line, x, y + dy, size, colour, anchor=anchor)
        return left
