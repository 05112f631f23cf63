"""What every scene shows on top of the audience's picture (`Chrome`): a glitch's word flash,
the loading screen (or a lost server being looked for), a replay's and an intervention's notes.
The operator's chrome (REC, the prompt box, the HUD, errors and notices) is layers/operator.py,
left out of a clean picture; where it stands is reckoned here (`side_items`), since the
architecture's notes give way to it (`side_height`) in whatever picture they share.

Each has its place in the safe area, clear of the scene's words: over the neural web what the
model is changed by stands at the top, a replay's note under the title; over the architecture
what the model is changed by at the title's right, and the operator's hint, notices and HUD
at the foot of its right column (diagram.side_slot, where the block's notes give way). The
HUD's type is a desk's in every venue (room.DESK); the rest is never under the venue's
smallest type.
"""

from visualizer.render.layers.layer import LayerInput, Overlay
from visualizer.render.layers.panels import PROMPT_SIZE, Panel, hint_shown
from visualizer.render.layers.room import Room
from visualizer.render.layers.text import Fonts
from visualizer.render.layers.web_text import BAND
from visualizer.render.layers.words import visible, wrap

REPLAY = "↻ a replay of an earlier answer, while the model loads"
HINT = "type a prompt and press Enter"


def loading_screen(state: str, rows: int) -> bool:
    """The loading screen is what a frame shows: the model starting or loading, and nothing of
    it in the scene yet (no web at rest, no replayed answer)."""
    return state in ("starting", "loading") and rows == 0


def side_items(room: Room, o: Overlay, fonts: Fonts, width: float
               ) -> list[tuple[str, list[str], int, str]]:  # fmt: skip
    """Over the architecture, what the operator's chrome puts at the foot of its right column,
    from the bottom up: (part, lines, size, colour name): the hint, the notices, the HUD."""
    items = []
    if hint_shown(o):
        size = room.type(PROMPT_SIZE * 0.8)
        items.append(("hint", [HINT], size, "dim"))
    if o.notices:
        size = room.type(0.024)
        lines = [line for notice in o.notices for line in wrap(notice, fonts, size, width)]
        items.append(("notices", lines, size, "accent"))
    if o.hud:
        items.append(("hud", list(o.hud), room.desk().type(0.011), "text"))
    return items


def side_height(room: Room, o: Overlay, fonts: Fonts, width: float) -> float:
    """How much of the right column's foot `side_items` take, gaps included."""
    return sum(round(size * 1.3) * len(lines) + size * 0.5 for _, lines, size, _ in
               side_items(room, o, fonts, width))  # fmt: skip


class Chrome(Panel):
    """What every scene shows on top."""

    stage = "chrome"

    def draw(self, frame: LayerInput) -> None:
        """Over whichever scene is shown, at the output's size."""
        scene, o, time = frame.scene, frame.overlay, frame.time
        w, h = self.begin(frame)
        p, room = self.painter, self.room
        web = o.scene_mix <= 0.5 or o.architecture is None
        if o.flash > 0 and o.flash_word:
            with p.part("flash"):
                p.rect(0, 0, w, h, (*self.text[:3], o.flash))
                p.text(visible(o.flash_word), w / 2, 0.36 * h, round(0.22 * h),
                       (*self.ink[:3], o.flash), bold=True, anchor="center")  # fmt: skip
        if loading_screen(o.state, scene.rows) or o.state == "reconnecting":
            with p.part("loading"):
                self._loading(o, w, h, time)
        if o.replay:
            size = room.type(0.03)
            with p.part("replay"):
                self._lines((REPLAY,), 0.5 * w, room.top + BAND * h + 0.3 * size, size,
                            self.accent, anchor="center", box=True)  # fmt: skip
        if o.intervene:  # what the model is changed by: never left unsaid
            size = room.type(0.024)
            x, anchor = (0.5 * w, "center") if web else (room.right - 0.4 * size, "right")
            with p.part("intervene"):
                self._lines((o.intervene,), x, room.top + 0.3 * size, size, self.accent,
                            anchor=anchor, box=True)  # fmt: skip
        self.painter.flush()

    def _loading(self, o: Overlay, w: int, h: int, time: float) -> None:
        """The model loading, or a lost server being looked for ("reconnecting"), over the
        animated scene."""
        size = self.room.type(0.045)
        small = self.room.type(0.028)
        reconnecting = o.state == "reconnecting"
        title = "reconnecting" if reconnecting else "waking the model"
        if reconnecting:  # over the scene it was showing: a band to read it on
            self.painter.rect(0, 0.34 * h, w, 0.26 * h, (0, 0, 0, 0.6))
        left = 0.5 * w - self.painter.fonts.width(title + "...", size) / 2  # dots must not jitter
        self.painter.text(title + "." * (1 + int(time * 2) % 3), left, 0.4 * h, size, self.text)
        if reconnecting:
            self.painter.text(o.message, 0.5 * w, 0.5 * h, small, self.dim, anchor="center")
            return
        # the bar: the stages done and what is counted of the current one; the words say
        # which stage it is ("stage 3 of 4: loading the weights, 120 of 272 tensors"), never a
        # percentage (a 70B model's weights sat at a constant "90%" for minutes)
        bar_w, bar_h, x, y = 0.34 * w, 0.014 * h, 0.33 * w, 0.5 * h
        self.painter.rect(x, y, bar_w, bar_h, (1, 1, 1, 0.12))
        self.painter.rect(x, y, bar_w * max(0.02, o.progress), bar_h, self.accent)
        self.painter.text(o.message, 0.5 * w, 0.55 * h, small, self.dim, anchor="center")
