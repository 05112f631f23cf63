"""The neural web's words (`WebText`): the title and the model's state, the logit lens beside
the tower, the labels on the token path, the answer with the current token highlighted, the
next-token candidates, and the untouched run beside a changed one.

Sizes are fractions of the window height (panels.py); where a label would cover another it is
cut short or left out.
"""

import numpy as np
import pygame

from visualizer.config import LookSettings
from visualizer.features import SceneState, Token, percent
from visualizer.render import layout
from visualizer.render.layers.layer import LayerInput, Overlay
from visualizer.render.layers.panels import Panel
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
PENDING_LIMIT = 4096  # frames a pause holds (the title says how many more it dropped)


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


def answer_top(look: LookSettings, h: int) -> float:
    return 0.93 * h - round(look.text_size * h * 1.25) * ANSWER_LINES


def answer_band(look: LookSettings, size: tuple[int, int], scene: SceneState
                ) -> tuple[float, float]:  # fmt: skip
    """The darkened band behind the answer: its top (fraction of the height from the bottom)
    and shade; none before the first token. The bloom's last pass draws it (the renderer asks
    here), so the web's light dims under the words without a pass of its own."""
    h = size[1]
    return 1 - (answer_top(look, h) - 0.09 * h) / h, BAND_SHADE if scene.rows else 0.0


class WebText(Panel):
    """The neural web's 2D part, over its finished 3D part."""

    stage = "web"

    def draw(self, frame: LayerInput) -> None:
        """`frame.matrix` (the camera's) places the labels of tokens on the path."""
        scene, o, matrix = frame.scene, frame.overlay, frame.matrix
        w, h = self.begin(frame)
        self._title(o, w, h)
        lens = self._lens(scene, matrix, w, h) if scene.rows and o.lens else []
        self._token_labels(scene, matrix, w, h, lens)
        if scene.rows:
            self._answer(scene, o, w, h)
            self._candidates(scene, w, h)
            self._ghost(scene, w, h)
        self.painter.flush()

    def _title(self, o: Overlay, w: int, h: int) -> None:
        size = round(0.032 * h)
        name = o.model or "neuroweb"
        layers = f"  ·  {o.layers} layers" if o.layers else ""
        self.painter.text(f"{name}{layers}", 0.025 * w, 0.03 * h, size, self.text, bold=True)
        state = {"generating": "thinking", "finished": "done", "stopped": "stopped"}
        label = "paused — → steps one token" if o.paused else state.get(o.state, "")
        if o.paused and o.paused_dropped:
            label += f" (held the newest {PENDING_LIMIT:,}, dropped {o.paused_dropped:,})"
        if o.recording:
            label = f"● REC  {label}"
        self.painter.text(label, 0.975 * w, 0.03 * h, size, self.accent, anchor="right")

    def _lens(self, scene: SceneState, matrix: np.ndarray, w: int, h: int) -> list[Box]:
        """The logit lens beside the tower: at each lensed layer's height, the word that layer
        would say next and its probability (the top one is the model's own answer), so the
        answer can be seen forming up the tower. Returns the boxes its labels cover."""
        if not scene.lens or scene.rows < 2:
            return []
        size = round(0.026 * h)
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
            return []
        boxes: list[Box] = []
        x = min(max(p[0] for p in placed), 0.72 * w - 9 * size)
        y_first = max(min(p[1] for p in placed) - 0.6 * size, 0.1 * h)  # below the title
        y_last = y_first - 1.2 * size
        for _, y, row, word, prob in sorted(placed, key=lambda p: p[1]):  # top down
            y = max(y - 0.6 * size, y_last + 1.2 * size)  # never on top of each other
            y_last = y
            top = row == scene.rows - 1
            name = "emb" if row == 0 else f"{row - 1}"
            colour = self.accent if top else self.dim
            self.painter.text(f"{name:>3}", x, y, round(size * 0.8), self.dim)
            room = 0.73 * w - x - 2.2 * size  # not under the panel
            label = fitted(self.painter.fonts, before_number(word, 14), f" {percent(prob)}",
                           room, size, top)  # fmt: skip
            lw, lh = self.painter.text(label, x + 2.2 * size, y, size, colour, bold=top)
            boxes.append((x, y, x + 2.2 * size + lw, y + lh))
            ghost = scene.ghost
            if ghost is not None and ghost.lens_ids[row, 0] >= 0 and ghost.lens_text[row] != word:
                other = f"untouched: {token_label(ghost.lens_text[row])[:12]}"
                right = x + 2.6 * size + lw
                small = round(size * 0.75)
                if right + self.painter.fonts.width(other, small) < 0.73 * w:  # never under
                    ow, oh = self.painter.text(other, right, y + 0.15 * size, small, self.faint)
                    boxes.append((right, y, right + ow, y + 0.15 * size + oh))
        shown = lens_caption([row for row, _, _ in scene.lens], scene.rows - 1)
        small = round(size * 0.75)
        caption = [f"logit lens, {shown}"]
        if x + self.painter.fonts.width(caption[0], small) > 0.73 * w:  # not under the panel
            caption = ["logit lens,", shown]
        below = y_last + 1.6 * size
        self._lines(caption, x, below, small, self.dim)
        wide = max(self.painter.fonts.width(line, small) for line in caption)
        return [*boxes, (x, below, x + wide, below + round(small * 1.3) * len(caption))]

    def _token_labels(self, scene: SceneState, matrix: np.ndarray, w: int, h: int,
                      taken: list[Box]) -> None:  # fmt: skip
        """The words on the token path: the newest, and the ones its attention goes to most;
        none where it would touch another label or one of the `taken` boxes (the lens's: a
        path word beside a lens label would read as part of it)."""
        size = round(0.028 * h)
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
            if any(_overlap(box, other) for other in taken):
                continue  # never on top of another label
            taken = [*taken, box]
            colour = self.accent if index == scene.newest else self.dim
            self.painter.text(text, x, y, size, colour, anchor="center")

    def _answer(self, scene: SceneState, o: Overlay, w: int, h: int) -> None:
        size = round(self.look.text_size * h)
        left, width = 0.04 * w, 0.64 * w
        tokens = list(scene.tokens)[-400:]
        shown = ANSWER_LINES - (o.typing is not None)  # the prompt box takes the last line
        lines = wrap_tokens(tokens, self.painter.fonts, size, width)[-shown:]
        step = round(size * 1.25)
        top = answer_top(self.look, h)
        if o.prompt:
            label = visible(o.prompt)
            limit = 90
            label = label if len(label) <= limit else label[: limit - 1] + "…"
            self.painter.text(f"› {label}", left, top - 0.07 * h, round(0.034 * h), self.dim)
        current = scene.newest
        for row, line in enumerate(lines):
            y = top + row * step
            pieces = tuple((text, index == current) for text, index in line)
            x = left
            for (text, is_current), (_, index) in zip(pieces, line, strict=True):
                tw = self.painter.fonts.width(text, size)
                if index == scene.parted:  # where the untouched run took another token
                    self.painter.rect(x, y + size * 1.2, tw, max(2.0, size * 0.08), self.faint)
                    self.painter.text("↓ parts", x, y - size * 0.55, round(size * 0.45),
                                      self.faint)  # fmt: skip
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
            self.painter.image(texture, left, y, (1, 1, 1, 1))

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

    def _candidates(self, scene: SceneState, w: int, h: int) -> None:
        size = round(0.03 * h)
        x, y, width = 0.74 * w, 0.1 * h, 0.23 * w
        if not scene.candidates:  # the web at rest: no token read yet
            return
        # the model's own distribution (T = 1), not the sampler's at the chosen temperature
        self.painter.text(CANDIDATES_TITLE, x, y, round(0.03 * h), self.text, bold=True)
        y += size * 1.5
        step = round(size * 1.55)
        rows = scene.candidate_rows(CANDIDATES_SHOWN)
        for i, (_, bar, _) in enumerate(rows):  # the bars ease between tokens
            colour = self.accent if i == 0 else self.text
            self.painter.rect(x - size * 0.2, y + i * step, width * bar + size * 0.2,
                              size * 1.3, (*colour[:3], 0.22))  # fmt: skip
        shown = tuple(text for text, _, _ in rows)
        percents = tuple(printed for _, _, printed in rows)
        texture = self.painter.texture_for(
            ("candidates", size, step, round(width), shown, percents),
            lambda: self._candidates_surface(shown, percents, size, step, round(width)),
        )
        self.painter.image(texture, x, y, (1, 1, 1, 1))

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

    def _ghost(self, scene: SceneState, w: int, h: int) -> None:
        """The untouched run beside a changed one: where the two answers part, what the
        untouched one said from there, and what it would say next."""
        ghost = scene.ghost
        if ghost is None:
            return
        size = round(0.026 * h)
        if scene.parted >= 0:
            said = "".join(t.text for t in scene.ghost_tokens if t.index >= scene.parted)
            line = f"untouched run, from where they part: {visible(said).strip()}"
        else:
            line = "untouched run: the same so far"
        self.painter.text(line[-110:], 0.04 * w, 0.955 * h, size, self.faint)
        x, y = 0.74 * w, 0.1 * h + round(0.03 * h) * (1.5 + 1.55 * CANDIDATES_SHOWN) + size
        pairs = zip(ghost.topk_text[:3], ghost.topk_probs[:3], strict=False)
        top = ", ".join(f"{before_number(t)} {percent(p)}" for t, p in pairs)
        self.painter.text(f"untouched: {top}", x, y, round(0.8 * size), self.faint)
