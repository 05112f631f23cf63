"""The operator's chrome (`Operator`): the REC label, the prompt box (or the hint to type), the
HUD, notices and errors. It is not part of the audience's picture: the renderer draws it over
the finished frame only when asked (Renderer.operator), after a recording has taken the frame
(App.frame), so a recording made from the window is the clean picture while the window shows
the operator what they need. A clean window (`run --clean`) and offline renders leave it out;
`--chrome` records it too (docs/recording.md).

Each part has its place in the safe area, clear of the scene's words (chrome.py's docstring):
over the neural web the REC label left of the title's state, the HUD under the title and the
notices under the candidates (on the title's line where they do not fit); over the
architecture the hint, the notices and the HUD up from the foot of its right column
(chrome.side_items, where the block's notes give way); the prompt box at the foot of the
safe area (panels.prompt_slot). The HUD is read at a desk: its type is a desk's in every venue
(room.DESK).

It is drawn after the blackout (layers/blackout.py), with its colours darkened by as much: the
same pixels as if it were drawn under it, so the operator's text fades to black with the rest.
"""

from visualizer.render.diagram import side_slot
from visualizer.render.layers.chrome import HINT, side_items
from visualizer.render.layers.layer import LayerInput, Overlay
from visualizer.render.layers.panels import GAP, PROMPT_SIZE, RED, Panel, hint_shown, prompt_slot
from visualizer.render.layers.web_text import (
    BAND,
    COLUMN,
    right_column,
    state_label,
    title_size,
    title_text,
)
from visualizer.render.layers.words import fitted, visible, wrap

REC = "● REC"
PROMPT_BOX = (0.05, 0.07, 0.15, 0.92)


def darkened(colour: tuple[float, ...], light: float) -> tuple[float, ...]:
    """`colour` with its red, green and blue times `light` (1 - the blackout): drawn over a
    picture the blackout darkened, the same pixel as drawn before it and darkened with it."""
    return (colour[0] * light, colour[1] * light, colour[2] * light, colour[3])


class Operator(Panel):
    """What the operator sees over the picture."""

    stage = "operator"

    def draw(self, frame: LayerInput) -> None:
        o, time = frame.overlay, frame.time
        w, h = self.begin(frame)
        light = 1.0 - min(max(o.blackout, 0.0), 1.0)
        colours = {name: darkened(colour, light) for name, colour in (
            ("text", self.text), ("dim", self.dim), ("accent", self.accent), ("red", RED),
            ("box", PROMPT_BOX))}  # fmt: skip
        web = o.scene_mix <= 0.5 or o.architecture is None
        p = self.painter
        if o.recording and web:
            with p.part("rec"):
                self._rec(o, colours["accent"])
        with p.part("prompt box"):
            self._prompt_box(o, w, h, time, web, colours)
        if web:
            self._web_side(frame, w, h, colours)
        else:
            self._architecture_side(o, colours)
        with p.part("errors"):
            size = self.room.type(0.022)
            self._lines(o.errors, self.room.left + 0.4 * size, 0.5 * h, size, colours["red"],
                        box=True)  # fmt: skip
        p.flush()

    def _rec(self, o: Overlay, colour: tuple[float, ...]) -> None:
        """Left of what the title's right end says (web_text.state_label), on its line."""
        room, fonts = self.room, self.painter.fonts
        size = title_size(room)
        label = state_label(o)
        gap = fonts.width("  ", size) if label else 0
        right = room.right - fonts.width(label, size) - gap
        self.painter.text(REC, right, room.top, size, colour, anchor="right")

    def _web_side(self, frame: LayerInput, w: int, h: int, colours: dict) -> None:
        """The HUD under the title; the notices under the candidates, over the answer (the
        prompt's line ends left of their column), or on the title's line where no line fits."""
        room, p, o = self.room, self.painter, frame.overlay
        ghost = frame.scene.ghost is not None
        if o.hud:
            size = room.desk().type(0.022)
            with p.part("hud"):
                self._lines(o.hud, room.left + 0.4 * size, room.top + BAND * h + 0.3 * size,
                            size, colours["text"], box=True)  # fmt: skip
        if o.notices:
            size = room.type(0.024)
            step, left = round(size * 1.3), COLUMN * w
            lines = [line for notice in o.notices
                     for line in wrap(notice, p.fonts, size, room.right - left)]  # fmt: skip
            if frame.scene.rows:  # between the candidates and the answer
                _, top, bottom = right_column(self.look, room, o, ghost)
                top += GAP * h
            else:  # no answer yet: up from the prompt box's place, to the title's band
                top, bottom = room.top + BAND * h, prompt_slot(room, o)
                bottom -= GAP * h if bottom < room.bottom else 0.0
            fit = int((bottom - top) // step)
            with p.part("notices"):
                if fit >= 1:
                    self._lines(lines[-fit:], room.right, bottom - step, size,
                                colours["accent"], anchor="right", upward=True)  # fmt: skip
                else:  # no room there: the newest, on the title's line
                    self._title_notice(o, o.notices[-1], colours["accent"])

    def _title_notice(self, o: Overlay, notice: str, colour: tuple[float, ...]) -> None:
        """`notice` on the title's line, cut short to the room between the title (and the
        interventions' box) and the REC label and state at its right end."""
        room, fonts = self.room, self.painter.fonts
        size, w = title_size(room), room.size[0]
        right = room.right - fonts.width(f"{REC}    {state_label(o)}", size)
        left = max(room.left + fonts.width(f"{title_text(o)}  ", size, True),
                   0.5 * w + fonts.width(o.intervene, room.type(0.024)) if o.intervene
                   else 0.0)  # fmt: skip
        small = room.type(0.024)
        text = fitted(fonts, visible(notice), "", right - left, small, False)
        if fonts.width(text, small) <= right - left:
            self.painter.text(text, right, room.top + 0.3 * small, small, colour, anchor="right")

    def _architecture_side(self, o: Overlay, colours: dict) -> None:
        """The hint, the notices and the HUD, up from the foot of the right column."""
        if o.architecture is None:
            return
        slot = side_slot(o.architecture, self.room.size)
        y = slot.y + slot.h
        for part, lines, size, colour in side_items(self.room, o, self.painter.fonts, slot.w):
            step = round(size * 1.3)
            y -= step * len(lines)
            with self.painter.part(part):
                self._lines(lines, slot.x, y, size, colours[colour])
            y -= size * 0.5

    def _prompt_box(self, o: Overlay, w: int, h: int, time: float, web: bool,
                    colours: dict) -> None:  # fmt: skip
        """At the foot of the safe area: the box being typed in, or (over the web) the hint."""
        room = self.room
        size = room.type(PROMPT_SIZE)
        top = prompt_slot(room, o)
        if o.typing is not None:
            cursor = "|" if int(time * 2) % 2 == 0 else " "
            box_h = room.bottom - top
            self.painter.rect(room.left, top, room.width, box_h, colours["box"])
            self.painter.rect(room.left, top + box_h - 2, room.width, 2, colours["accent"])
            x = room.left + 0.6 * size
            ask = self.painter.text("Ask:", x, top + size * 0.45, size, colours["accent"])[0]
            text, room_w = visible(o.typing)[-120:], room.right - x - ask - 1.6 * size
            while len(text) > 1 and self.painter.fonts.width(text, size) > room_w:
                text = text[1:]  # its newest words
            self.painter.text(f"{text}{cursor}", x + ask + size * 0.5, top + size * 0.45,
                              size, colours["text"])  # fmt: skip
        elif web and hint_shown(o):
            self.painter.text(HINT, 0.5 * w, top + size * 0.45, size, colours["dim"],
                              anchor="center")  # fmt: skip
