"""What the 2D text layers share (`web_text.WebText`, the web's words; `chrome.Chrome`, what
every scene shows on top): the painter, the look's colours, the room (render/layers/room.py:
the safe area and the venue's smallest type), the places they share at the foot of the safe
area, and lines of text set one under another.

Sizes are fractions of the window height, so the text reads the same at 720p and on a 4K stage
screen; the answer's height is `look.text_size` (5 % by default: about 54 px at 1080p).
"""

from visualizer.config import rgb
from visualizer.render.layers.layer import Kit, Layer, LayerInput, Overlay
from visualizer.render.layers.room import Room

RED = (1.0, 0.35, 0.35, 1.0)  # errors, and what an intervention switched off
PROMPT_SIZE = 0.034  # the prompt box's type, and the hint's
GAP = 0.012  # of the height, between two parts stacked at the foot of the safe area


def hint_shown(o: Overlay) -> bool:
    """Someone could type a prompt now, and nothing is typed yet: say how."""
    return o.typing is None and o.interactive and o.state in ("ready", "finished", "stopped")


def prompt_slot(room: Room, o: Overlay, hint: bool = True) -> float:
    """The top of what the prompt box (or, with `hint`, the hint to type) takes at the foot of
    the safe area; the safe area's bottom when neither is shown."""
    if o.typing is None and not (hint and hint_shown(o)):
        return room.bottom
    return room.bottom - 2 * room.type(PROMPT_SIZE)


class Panel(Layer):
    """A layer of 2D text, drawn with the shared painter in the look's colours."""

    def __init__(self, kit: Kit) -> None:
        look = kit.look
        self.painter, self.look, self.venue = kit.painter, look, kit.venue
        self.room = Room.of((1, 1), kit.venue)  # the output's, from `begin`
        self.text = (*rgb(look.text), 1.0)
        self.dim = (*rgb(look.text), 0.55)
        self.faint = (*rgb(look.text), 0.4)  # the untouched run, beside a changed one
        self.accent = (*rgb(look.accent), 1.0)
        self.ink = (*rgb(look.background), 1.0)  # text on the accent colour

    def begin(self, frame: LayerInput) -> tuple[int, int]:
        """The painter at the output's size, which is returned (text is placed in its pixels)."""
        self.painter.begin(frame.size)
        self.room = Room.of(frame.size, self.venue)
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
