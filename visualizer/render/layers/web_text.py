"""The neural web's words (`WebText`): the title and the model's state, the logit lens beside
the tower, the labels on the token path, the answer with the current token highlighted, the
next-token candidates, and the untouched run beside a changed one.

Sizes are fractions of the window height (panels.py), never under the venue's smallest type
(room.py); everything lies in the safe area. The title runs along the top, the tower stands on the
left third line (camera.py) with the lens beside it, the candidates fill the right third, and
the answer runs along the bottom (above the untouched run's line and the prompt box's place,
panels.prompt_slot); where a label would cover another it is cut short or left out.
"""

import numpy as np
import pygame

from visualizer.config import LookSettings
from visualizer.features import SceneState, Token, percent
from visualizer.render import layout
from visualizer.render.layers.layer import Kit, LayerInput, Overlay
from visualizer.render.layers.panels import GAP, Panel, prompt_slot
from visualizer.render.layers.room import Room
from visualizer.render.layers.words import (
    SPECIAL,
    before_number,
    fitted,
    lens_caption,
    token_label,
    visible,
    wrap_tokens,
)

ANSWER_LINES = 3
LABELLED_TOKENS = 3  # words shown on the path besides the newest: the most attended
BAND_SHADE = 0.55  # how much the scene darkens behind the answer
CANDIDATES_SHOWN = 8
CANDIDATES_TITLE = "next token (softmax)"
_ANGLES = np.linspace(0, 2 * np.pi, 16, endpoint=False)
# a row's ring at height 0
_RING = np.stack([layout.RING_RADIUS * np.cos(_ANGLES), np.zeros(16),
                  layout.RING_RADIUS * np.sin(_ANGLES), np.ones(16)])  # fmt: skip
COLUMN = 0.68  # of the width: the candidates' column (the right third) starts here, the
#               lens stays left of it; the answer runs the safe area's width, under both
BAND = 0.065  # of the height, under the safe area's top: the title's band
PROMPT_LINE = 0.034  # of the height: the prompt's line over the answer
LENS = 0.036  # of the height: the lens's words
CANDIDATES = 0.034  # of the height: the candidates' words


Box = tuple[float, float, float, float]  # a label's left, top, right, bottom in pixels


def path_tokens(scene: SceneState, history: int) -> dict[int, Token]:
    """Run position → the token the path may label: the newest `history` + 1, and the first
    token in view (the attention sink) once it is older than that, drawn at the far end of
    the path and named for what it is: "first token" while the run's first token is in view,
    "first token in view" once the context has slid past it (context_start > 0)."""
    tokens = {t.index: t for t in list(scene.tokens)[-(history + 1) :]}
    sink = next((t for t in scene.tokens if t.index == scene.sink), None)
    if sink is not None and sink.index not in tokens:
        name = "first token" if sink.index == 0 else "first token in view"
        tokens[sink.index] = Token(sink.index, f"{name}: {sink.text.strip()[:18]}",
                                   sink.is_prompt)  # fmt: skip
    return tokens


def _overlap(a: Box, b: Box) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def answer_place(look: LookSettings, room: Room, o: Overlay, ghost: bool
                 ) -> tuple[float, float]:  # fmt: skip
    """The answer's top and the untouched run's line's, stacked up from the foot of the safe
    area over the prompt box's place (when it is in use)."""
    h = room.size[1]
    bottom = prompt_slot(room, o)
    bottom -= GAP * h if bottom < room.bottom else 0.0
    ghost_top = bottom - round(room.type(0.026) * 1.25)
    if ghost:
        bottom = ghost_top - GAP * h
    return bottom - round(room.type(look.text_size) * 1.25) * ANSWER_LINES, ghost_top


def right_column(look: LookSettings, room: Room, o: Overlay, ghost: bool
                 ) -> tuple[int, float, float]:  # fmt: skip
    """The candidates' column: how many candidates it shows (as many as fit above the answer,
    at most CANDIDATES_SHOWN), its foot (with the untouched run's line under it, `ghost`), and
    the lowest that anything in it may reach (over the answer and its "↓ parts")."""
    h = room.size[1]
    size, small = room.type(CANDIDATES), room.type(0.8 * 0.026)
    step = round(size * 1.55)
    first = room.top + BAND * h + size * 1.5
    under = 0.5 * room.type(0.026) + round(small * 1.2) if ghost else 0.0
    top = answer_place(look, room, o, ghost)[0]
    above = top - GAP * h - under - (0.6 * room.type(look.text_size) if ghost else 0.0)
    rows = max(1, min(CANDIDATES_SHOWN, int((above - first) // step)))
    return rows, first + step * rows + under, above + under


def title_text(o: Overlay) -> str:
    """The title: the model's name and its depth."""
    layers = f"  ·  {o.layers} layers" if o.layers else ""
    return f"{o.model or 'neuroweb'}{layers}"


def title_size(room: Room) -> int:
    """The title's type (the operator's REC label beside it has the same)."""
    return room.type(0.032)


def state_label(o: Overlay) -> str:
    """What the title's right end says of the model: thinking, done, paused … (how to go on
    from a pause is the operator's: hud.paused_line)."""
    state = {"generating": "thinking", "finished": "done", "stopped": "stopped"}
    return "paused" if o.paused else state.get(o.state, "")


def answer_band(look: LookSettings, room: Room, frame: LayerInput) -> tuple[float, float]:
    """The darkened band behind the answer: its top (fraction of the height from the bottom)
    and shade; none before the first token. The bloom's last pass draws it (the renderer asks
    here), so the web's light dims under the words without a pass of its own."""
    h, scene = room.size[1], frame.scene
    top = answer_place(look, room, frame.overlay, scene.ghost is not None)[0]
    return 1 - (top - 0.09 * h) / h, BAND_SHADE if scene.rows else 0.0


class WebText(Panel):
    """The neural web's 2D part, over its finished 3D part."""

    stage = "web"

    def __init__(self, kit: Kit) -> None:
        super().__init__(kit)
        self.lens_words = (*self.text[:3], 0.8)  # brighter than dim: the hero beside the tower
        self._wrapped: tuple[tuple, list[list]] = ((), [])  # the answer's lines, and for what

    def draw(self, frame: LayerInput) -> None:
        """`frame.matrix` (the camera's) places the labels of tokens on the path."""
        scene, o, matrix = frame.scene, frame.overlay, frame.matrix
        w, h = self.begin(frame)
        p = self.painter
        first = len(p.drawn)
        with p.part("title"):
            self._title(o, w, h)
        if scene.rows:
            top, ghost_top = answer_place(self.look, self.room, o, scene.ghost is not None)
            with p.part("answer"):
                self._answer(scene, o, w, h, top)
            with p.part("candidates"):
                self._candidates(scene, o, w, h)
            with p.part("untouched run"):
                self._ghost(scene, o, w, h, ghost_top)
            if o.lens:
                with p.part("lens"):
                    self._lens(scene, matrix, w, h, top - 0.07 * h)
        with p.part("path words"):  # clear of every word above
            self._token_labels(scene, matrix, w, h, [box for _, box, _ in p.drawn[first:]])
        self.painter.flush()

    def _title(self, o: Overlay, w: int, h: int) -> None:
        size, room = title_size(self.room), self.room
        self.painter.text(title_text(o), room.left, room.top, size, self.text, bold=True)
        self.painter.text(state_label(o), room.right, room.top, size, self.accent,
                          anchor="right")  # fmt: skip

    def _lens(self, scene: SceneState, matrix: np.ndarray, w: int, h: int, below: float
              ) -> None:  # fmt: skip
        """The logit lens beside the tower: at each lensed layer's height, the word that layer
        would say next and its probability (the top one is the model's own answer), so the
        answer can be seen forming up the tower; all of it above `below`. The layers' numbers,
        the caption and the untouched run's words are details (room.detail)."""
        if not scene.lens or scene.rows < 2:
            return
        room = self.room
        small, names = room.detail(0.75 * 0.026), room.detail(0.8 * 0.026)
        # the answer forming, the hero beside the tower: as large as fits above the answer
        tall = below - (room.top + BAND * h) - (3 * small if small else 0.0)
        size = next((room.type(f) for f in (LENS, 0.03) if 1.2 * room.type(f) * (len(
            scene.lens) + 1) <= tall), room.type(0.026))  # fmt: skip
        heights = layout.row_height(scene.rows)[[row for row, _, _ in scene.lens]].astype(float)
        # each lensed row's ring of 16 points, projected at once: [4, rows, 16]
        clip = (matrix @ _RING)[:, None, :] + matrix[:, 1, None, None] * heights[None, :, None]
        front = clip[3] > 0
        depth = np.where(front, clip[3], 1.0)
        xs = np.where(front, (clip[0] / depth + 1) / 2 * w, -np.inf)
        ys = (1 - clip[1] / depth) / 2 * h
        placed: list[tuple[float, float, int, str, float]] = []
        for i, (row, word, prob) in enumerate(scene.lens):
            if front[i].any():
                y = float(ys[i][front[i]].mean())
                placed.append((float(xs[i].max()) + size, y, row, word, prob))
        if not placed:
            return
        right = COLUMN * w - 0.01 * w  # not under the candidates
        indent = 2.2 * size if names else 0.0
        x = max(min(max(p[0] for p in placed), right - 7 * size - indent), room.left)
        shown = lens_caption([row for row, _, _ in scene.lens], scene.rows - 1)
        caption = [f"logit lens, {shown}"] if small else []
        if small and x + self.painter.fonts.width(caption[0], small) > right:
            caption = ["logit lens,", shown]
        tail = 0.4 * size + round(small * 1.3) * len(caption) if small else 0.0
        ys, y_last = [], room.top + BAND * h - 1.2 * size  # below the title
        for _, y, *_ in sorted(placed, key=lambda p: p[1]):  # top down, never on each other
            y_last = max(y - 0.6 * size, y_last + 1.2 * size)
            ys.append(y_last)
        lift = max(0.0, y_last + 1.2 * size + tail - below)  # all above the answer
        lift = min(lift, ys[0] - (room.top + BAND * h))
        for (_, _, row, word, prob), y in zip(sorted(placed, key=lambda p: p[1]), ys,
                                               strict=True):  # fmt: skip
            y -= lift
            top = row == scene.rows - 1
            name = "emb" if row == 0 else f"{row - 1}"
            colour = self.accent if top else self.lens_words
            if names:
                self.painter.text(f"{name:>3}", x, y, names, self.dim)
            label = fitted(self.painter.fonts, before_number(word, 14), f" {percent(prob)}",
                           right - x - indent, size, top)  # fmt: skip
            lw, _ = self.painter.text(label, x + indent, y, size, colour, bold=top)
            ghost = scene.ghost
            if small and ghost is not None and ghost.lens_ids[row, 0] >= 0 and (
                    ghost.lens_text[row] != word):  # fmt: skip
                other = f"untouched: {token_label(ghost.lens_text[row])[:12]}"
                after = x + indent + lw + 0.4 * size
                if after + self.painter.fonts.width(other, small) < right:  # never under
                    self.painter.text(other, after, y + 0.15 * size, small, self.faint)
        if caption:
            self._lines(caption, x, y_last - lift + 1.6 * size, small, self.dim)

    def _token_labels(self, scene: SceneState, matrix: np.ndarray, w: int, h: int,
                      taken: list[Box]) -> None:  # fmt: skip
        """The words on the token path: the newest, and the ones its attention goes to most;
        none where it would touch another label or one of the `taken` boxes (the lens's: a
        path word beside a lens label would read as part of it)."""
        size = self.room.type(0.028)
        history = self.look.history
        tokens = path_tokens(scene, history)
        received = {i: w for i, w in scene.attention_received().items() if i in tokens}
        attended = sorted(received, key=received.get, reverse=True)
        chosen = [scene.newest] + [i for i in attended if i != scene.newest][:LABELLED_TOKENS]
        for index in chosen:
            token = tokens.get(index)
            text = token.text.strip() if token else ""
            if not text or SPECIAL.match(text):
                continue
            slot = np.array([scene.slot_of(index)], np.float32)
            clip = matrix @ np.append(layout.path_positions(slot, history)[0], 1.0)
            if clip[3] <= 0:
                continue
            x = (clip[0] / clip[3] + 1) / 2 * w
            y = (1 - clip[1] / clip[3]) / 2 * h - size * 1.7
            text = text[:40] if index == scene.sink else text[:24]  # its name, then 18
            half = self.painter.fonts.width(text, size) / 2
            pad = size * 0.15  # each side: 0.3 of the size between two labels
            box = (x - half - pad, y - pad, x + half + pad, y + size * 1.2 + pad)
            room = self.room
            if any(_overlap(box, other) for other in taken) or not (
                    room.left <= box[0] and box[2] <= room.right and room.top <= box[1]
                    and box[3] <= room.bottom):  # fmt: skip
                continue  # never on top of another label, nor outside the safe area
            taken = [*taken, box]
            colour = self.accent if index == scene.newest else self.dim
            self.painter.text(text, x, y, size, colour, anchor="center")

    def _answer(self, scene: SceneState, o: Overlay, w: int, h: int, top: float) -> None:
        size = self.room.type(self.look.text_size)
        left = self.room.left
        width = self.room.right - left
        lines = self._lines_of(scene, size, width)
        step = round(size * 1.25)
        parts = self.room.detail(0.45 * self.look.text_size)
        if o.prompt:  # left of the candidates' column: the operator's notices may sit there
            small = self.room.type(PROMPT_LINE)
            room_for = COLUMN * w - left - 2 * small
            label = fitted(self.painter.fonts, visible(o.prompt), "", room_for, small, False)
            self.painter.text(f"› {label}", left, top - 0.07 * h, small, self.dim)
        current = scene.newest
        for row, line in enumerate(lines):
            y = top + row * step
            pieces = tuple((text, index == current) for text, index in line)
            x = left
            for (text, is_current), (_, index) in zip(pieces, line, strict=True):
                tw = self.painter.fonts.width(text, size)
                if index == scene.parted:  # where the untouched run took another token
                    self.painter.rect(x, y + size * 1.2, tw, max(2.0, size * 0.08), self.faint)
                    if parts:
                        self.painter.text("↓ parts", x, y - size * 0.55, parts, self.faint)
                if is_current:  # dark glyphs on the accent: legible from the back of a room
                    pad = size * (0.08 + 0.1 * scene.pulse)
                    space = self.painter.fonts.width(text[: len(text) - len(text.lstrip())], size)
                    self.painter.rect(x + space - pad, y + size * 0.08 - pad / 2,
                                      tw - space + 2 * pad, size * 1.1 + pad,
                                      (*self.accent[:3], 0.92))  # fmt: skip
                x += tw
            texture = self.painter.texture_for(
                ("line", size, pieces), lambda p=pieces: self._line_surface(p, size)
            )
            self.painter.image(texture, left, y, (1, 1, 1, 1), size)

    def _lines_of(self, scene: SceneState, size: int, width: float) -> list[list]:
        """The answer's last lines, wrapped again only when a token came or the size changed
        (wrapping 400 tokens took 0.7 ms of every frame at 1080p): tokens only arrive, and
        each arrival counts in tokens_seen."""
        newest = scene.tokens[-1] if scene.tokens else None
        key = (id(scene), scene.tokens_seen, len(scene.tokens), newest, size, width)
        if self._wrapped[0] != key:
            tokens = list(scene.tokens)[-400:]
            lines = wrap_tokens(tokens, self.painter.fonts, size, width)[-ANSWER_LINES:]
            self._wrapped = key, lines
        return self._wrapped[1]

    def _line_surface(self, pieces: tuple[tuple[str, bool], ...], size: int) -> pygame.Surface:
        """One line of the answer, the current token in the accent colour, as one texture."""
        font = self.painter.fonts.get(size)
        widths = [self.painter.fonts.width(text, size) for text, _ in pieces]
        surface = pygame.Surface((max(1, sum(widths)), font.get_linesize()), pygame.SRCALPHA)
        x = 0
        for (text, is_current), tw in zip(pieces, widths, strict=True):
            colour = self.ink if is_current else self.text
            surface.blit(font.render(text, True, [round(255 * c) for c in colour[:3]]), (x, 0))
            x += tw
        return surface

    def _candidates(self, scene: SceneState, o: Overlay, w: int, h: int) -> None:
        size = self.room.type(CANDIDATES)
        x, y = COLUMN * w, self.room.top + BAND * h
        width = self.room.right - x
        if not scene.candidates:  # the web at rest: no token read yet
            return
        # the model's own distribution (T = 1), not the sampler's at the chosen temperature
        self.painter.text(CANDIDATES_TITLE, x, y, size, self.text, bold=True)
        y += size * 1.5
        step = round(size * 1.55)
        shown = right_column(self.look, self.room, o, scene.ghost is not None)[0]
        rows = scene.candidate_rows(shown)
        for i, (_, bar, _) in enumerate(rows):  # the bars ease between tokens
            colour = self.accent if i == 0 else self.text
            self.painter.rect(x - size * 0.2, y + i * step, width * bar + size * 0.2,
                              size * 1.3, (*colour[:3], 0.32))  # fmt: skip
        shown = tuple(text for text, _, _ in rows)
        percents = tuple(printed for _, _, printed in rows)
        texture = self.painter.texture_for(
            ("candidates", size, step, round(width), shown, percents),
            lambda: self._candidates_surface(shown, percents, size, step, round(width)),
        )
        self.painter.image(texture, x, y, (1, 1, 1, 1), size)

    def _candidates_surface(self, texts, percents, size: int, step: int, width: int):
        """The candidates' labels and percentages as one texture (it changes once per token)."""
        font = self.painter.fonts.get(size)
        surface = pygame.Surface((width, step * len(texts)), pygame.SRCALPHA)
        for i, (text, printed) in enumerate(zip(texts, percents, strict=True)):
            colour = self.accent if i == 0 else self.text
            label = font.render(token_label(text), True, [round(255 * c) for c in colour[:3]])
            surface.blit(label, (0, i * step), area=pygame.Rect(0, 0, width * 0.8, step))
            number = font.render(printed, True, [round(255 * c) for c in self.dim[:3]])
            surface.blit(number, (width - number.get_width(), i * step))
        return surface

    def _ghost(self, scene: SceneState, o: Overlay, w: int, h: int, top: float) -> None:
        """The untouched run beside a changed one: where the two answers part, what the
        untouched one said from there (its newest words, under the answer), and what it would
        say next (under the candidates)."""
        ghost = scene.ghost
        if ghost is None:
            return
        size, room, fonts = self.room.type(0.026), self.room, self.painter.fonts
        if scene.parted >= 0:
            said = visible("".join(t.text for t in scene.ghost_tokens
                                   if t.index >= scene.parted)).strip()  # fmt: skip
            line = f"untouched run, from where they part: {said}"
            while len(said) > 1 and fonts.width(line, size) > room.right - room.left:
                said = said[1:]  # its newest words
                line = f"untouched run, from where they part: …{said}"
        else:
            line = "untouched run: the same so far"
        self.painter.text(line, room.left, top, size, self.faint)
        x = COLUMN * w
        y = right_column(self.look, room, o, True)[1] - round(room.type(0.8 * 0.026) * 1.2)
        pairs = zip(ghost.topk_text[:3], ghost.topk_probs[:3], strict=False)
        said = ", ".join(f"{before_number(t)} {percent(p)}" for t, p in pairs)
        label = fitted(fonts, f"untouched: {said}", "", room.right - x, room.type(0.8 * 0.026),
                       False)  # fmt: skip
        self.painter.text(label, x, y, room.type(0.8 * 0.026), self.faint)
