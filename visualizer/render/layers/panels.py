"""The 2D layers on top of the scene: the web's words (`WebText`: the answer with the current
token highlighted, the next-token candidates, the title, the labels on the path and the lens)
and every scene's chrome (`Chrome`: the prompt box, the loading screen, the HUD and messages).

Sizes are fractions of the window height, so the text reads the same at 720p and on a 4K stage
screen; the answer's height is `look.text_size` (5 % by default: about 54 px at 1080p).
"""

import re
from collections.abc import Sequence

import numpy as np
import pygame

from visualizer.config import LookSettings, rgb
from visualizer.features import SceneState, Token, percent
from visualizer.render import layout
from visualizer.render.layers.layer import Kit, Layer, LayerInput, Overlay
from visualizer.render.layers.text import Fonts, Painter

ANSWER_LINES = 3
LABELLED_TOKENS = 3  # words shown on the path besides the newest: the most attended
BAND_SHADE = 0.55  # how much the scene darkens behind the answer
CANDIDATES_SHOWN = 8
CANDIDATES_TITLE = "next token (softmax)"
SPECIAL = re.compile(r"^\s*<\|[^|]*\|>\s*$")  # chat-template markers such as <|im_end|>
RED = (1.0, 0.35, 0.35, 1.0)
_ANGLES = np.linspace(0, 2 * np.pi, 16, endpoint=False)
_RING = np.stack([layout.RING_RADIUS * np.cos(_ANGLES), np.zeros(16),
                  layout.RING_RADIUS * np.sin(_ANGLES), np.ones(16)])  # a row's ring at height 0
PENDING_LIMIT = 4096  # frames a pause holds
REPLAY = "↻ a replay of an earlier answer, while the model loads"


Box = tuple[float, float, float, float]  # a label's left, top, right, bottom in pixels


def loading_screen(state: str, rows: int) -> bool:
    """The loading screen is what a frame shows: the model starting or loading, and nothing of
    it in the scene yet (no web at rest, no replayed answer)."""
    return state in ("starting", "loading") and rows == 0


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


def _visible(text: str) -> str:
    return text.replace("\n", " ¶ ").replace("\t", " ")


def _candidate_label(text: str) -> str:
    """A token as the audience should read it, each distinct token differently: a space
    before a word (it starts the word) is not shown, any other is '·'; a newline is '¶', a tab
    '→'; spaces alone are named ('(space)', '(3 spaces)'), nothing is '∅'. SmolLM2's
    candidates after an answer were '\\n', '\\n ' and '\\n   ', all shown as '¶' before."""
    if not text.strip(" "):
        return _spaces(text)
    if not text.lstrip(" ")[0].isspace():  # spaces, then a word: the last of them starts it
        text = text.removeprefix(" ")
    return text.replace(" ", "·").replace("\n", "¶").replace("\t", "→")


def _spaces(text: str) -> str:
    return "∅" if not text else "(space)" if len(text) == 1 else f"({len(text)} spaces)"


def before_number(text: str, limit: int = 20) -> str:
    """A token's label where a number follows it (the lens's "in 29%"): in quotes when it has
    no letters, for "- 28%" read as minus 28 %, ". 95%" as 0.95 % and "1 87%" as 187 %."""
    if not text.strip(" "):
        return _spaces(text)
    label = _candidate_label(text)[:limit]
    return label if any(c.isalpha() for c in label) else f"“{label}”"


def quoted_token(text: str) -> str:
    """A token named inside a sentence: a word in quotes, spaces alone or nothing by name
    (empty quotes would say nothing)."""
    return _spaces(text) if not text.strip(" ") else f"“{_candidate_label(text)[:20]}”"


def lens_caption(rows: Sequence[int], layers: int) -> str:
    """Which layers the lens reads, said from the rows it did read (0 the embedding, r the
    output of block r - 1) of a model with `layers` blocks."""
    rows = sorted(rows)
    if rows == list(range(layers + 1)):
        return "every layer"
    if rows == [0, layers]:
        return "the embedding and the last layer"
    step = rows[1] - rows[0] if len(rows) > 1 and rows[0] == 0 else 0
    if step < 1 or rows != sorted({*range(0, layers + 1, step), layers}):
        return "layers " + ", ".join("emb" if r == 0 else str(r - 1) for r in rows)
    nth = {1: "st", 2: "nd", 3: "rd"}.get(step % 10 if step % 100 not in (11, 12, 13) else 0, "th")
    return f"every {step}{nth} layer + the last"


def wrap_tokens(tokens: list[Token], fonts: Fonts, size: int, width: float) -> list[list]:
    """Lines of [text, token index] pieces; breaks at newlines and before a piece that would
    overflow. Only generated tokens; chat-template markers are left out."""
    lines: list[list] = [[]]
    x = 0.0
    for token in tokens:
        if token.is_prompt or SPECIAL.match(token.text):
            continue
        parts = token.text.split("\n")
        for n, part in enumerate(parts):
            if n > 0:
                lines.append([])
                x = 0.0
            if not part:
                continue
            w = fonts.width(part, size)
            if x + w > width and lines[-1]:
                part = part.lstrip(" ") or part
                w = fonts.width(part, size)
                lines.append([])
                x = 0.0
            lines[-1].append([part, token.index])
            x += w
    return [line for line in lines if line] or [[]]


def answer_top(look: LookSettings, h: int) -> float:
    return 0.93 * h - round(look.text_size * h * 1.25) * ANSWER_LINES


def answer_band(look: LookSettings, size: tuple[int, int], scene: SceneState
                ) -> tuple[float, float]:  # fmt: skip
    """The darkened band behind the answer: its top (fraction of the height from the bottom)
    and shade; none before the first token. The bloom's last pass draws it (the renderer asks
    here), so the web's light dims under the words without a pass of its own."""
    h = size[1]
    return 1 - (answer_top(look, h) - 0.09 * h) / h, BAND_SHADE if scene.rows else 0.0


class Panels:
    def __init__(self, painter: Painter, look: LookSettings) -> None:
        self.painter, self.look = painter, look
        self.text = (*rgb(look.text), 1.0)
        self.dim = (*rgb(look.text), 0.55)
        self.faint = (*rgb(look.text), 0.4)  # the untouched run, beside a changed one
        self.accent = (*rgb(look.accent), 1.0)
        self.ink = (*rgb(look.background), 1.0)  # text on the accent colour

    def draw(
        self, scene: SceneState, o: Overlay, size: tuple[int, int], time: float, matrix: np.ndarray
    ) -> None:
        """The neural web's 2D part; `matrix` (the camera's) places the labels of tokens on the
        path."""
        w, h = size
        self.painter.begin(size)
        self._title(o, w, h)
        lens = self._lens(scene, matrix, w, h) if scene.rows and o.lens else []
        self._token_labels(scene, matrix, w, h, lens)
        if scene.rows:
            self._answer(scene, o, w, h)
            self._candidates(scene, w, h)
            self._ghost(scene, w, h)
        self.painter.flush()

    def draw_chrome(
        self, scene: SceneState, o: Overlay, size: tuple[int, int], time: float
    ) -> None:
        """What every scene shows on top: a word flash, loading, the prompt box, HUD, errors
        and notices."""
        w, h = size
        self.painter.begin(size)
        if o.flash > 0 and o.flash_word:
            self.painter.rect(0, 0, w, h, (*self.text[:3], o.flash))
            self.painter.text(_visible(o.flash_word), w / 2, 0.36 * h, round(0.22 * h),
                              (*self.ink[:3], o.flash), bold=True, anchor="center")  # fmt: skip
        if loading_screen(o.state, scene.rows) or o.state == "reconnecting":
            self._loading(o, w, h, time)
        if o.replay:
            self._lines((REPLAY,), 0.5 * w, 0.085 * h, round(0.03 * h), self.accent,
                        anchor="center", box=True)  # fmt: skip
        if o.intervene:  # what the model is changed by: never left unsaid
            self._lines((o.intervene,), 0.64 * w, 0.02 * h, round(0.024 * h), self.accent,
                        anchor="center", box=True)  # fmt: skip
        self._prompt_box(o, w, h, time)
        if o.hud:
            self._hud(o, w, h)
        self._lines(o.errors, 0.025 * w, 0.5 * h, round(0.022 * h), RED, box=True)
        self._lines(o.notices, 0.975 * w, 0.9 * h, round(0.024 * h), self.accent,
                    anchor="right", upward=True)  # fmt: skip
        self.painter.flush()

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
            label = self._fitted(before_number(word, 14), f" {percent(prob)}",
                                 0.73 * w - x - 2.2 * size, size, top)  # not under the panel
            lw, lh = self.painter.text(label, x + 2.2 * size, y, size, colour, bold=top)
            boxes.append((x, y, x + 2.2 * size + lw, y + lh))
            ghost = scene.ghost
            if ghost is not None and ghost.lens_ids[row, 0] >= 0 and ghost.lens_text[row] != word:
                other = f"untouched: {_candidate_label(ghost.lens_text[row])[:12]}"
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

    def _fitted(self, word: str, tail: str, room: float, size: int, bold: bool) -> str:
        """`word` + `tail`, the word cut short (…) until the whole is at most `room` wide."""
        text = word + tail
        while len(word) > 1 and self.painter.fonts.width(text, size, bold) > room:
            word = word[:-1]
            text = f"{word}…{tail}"
        return text

    def _ghost(self, scene: SceneState, w: int, h: int) -> None:
        """The untouched run beside a changed one: where the two answers part, what the
        untouched one said from there, and what it would say next."""
        ghost = scene.ghost
        if ghost is None:
            return
        size = round(0.026 * h)
        if scene.parted >= 0:
            said = "".join(t.text for t in scene.ghost_tokens if t.index >= scene.parted)
            line = f"untouched run, from where they part: {_visible(said).strip()}"
        else:
            line = "untouched run: the same so far"
        self.painter.text(line[-110:], 0.04 * w, 0.955 * h, size, self.faint)
        x, y = 0.74 * w, 0.1 * h + round(0.03 * h) * (1.5 + 1.55 * CANDIDATES_SHOWN) + size
        pairs = zip(ghost.topk_text[:3], ghost.topk_probs[:3], strict=False)
        top = ", ".join(f"{before_number(t)} {percent(p)}" for t, p in pairs)
        self.painter.text(f"untouched: {top}", x, y, round(0.8 * size), self.faint)

    def _hud(self, o: Overlay, w: int, h: int) -> None:
        """Where it covers nothing: the web's empty left side, or, over the architecture,
        the right of its title band, in two columns of small type."""
        if o.scene_mix <= 0.5:
            self._lines(o.hud, 0.025 * w, 0.1 * h, round(0.022 * h), self.text, box=True)
            return
        size, half = round(0.0135 * h), (len(o.hud) + 1) // 2
        right = self._lines(o.hud[half:], 0.985 * w, 0.01 * h, size, self.text, "right", True)
        self._lines(o.hud[:half], right - 1.2 * size, 0.01 * h, size, self.text, "right", True)

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

    def _loading(self, o: Overlay, w: int, h: int, time: float) -> None:
        """The model loading, or a lost server being looked for ("reconnecting"), over the
        animated scene."""
        size = round(0.045 * h)
        small = round(0.028 * h)
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

    def _answer(self, scene: SceneState, o: Overlay, w: int, h: int) -> None:
        size = round(self.look.text_size * h)
        left, width = 0.04 * w, 0.64 * w
        tokens = list(scene.tokens)[-400:]
        shown = ANSWER_LINES - (o.typing is not None)  # the prompt box takes the last line
        lines = wrap_tokens(tokens, self.painter.fonts, size, width)[-shown:]
        step = round(size * 1.25)
        top = answer_top(self.look, h)
        if o.prompt:
            label = _visible(o.prompt)
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
            label = font.render(_candidate_label(text), True, [round(255 * c) for c in colour[:3]])
            surface.blit(label, (0, i * step), area=pygame.Rect(0, 0, width * 0.8, step))
            number = font.render(printed, True, [round(255 * c) for c in self.dim[:3]])
            surface.blit(number, (width - number.get_width(), i * step))
        return surface

    def _prompt_box(self, o: Overlay, w: int, h: int, time: float) -> None:
        size = round(0.034 * h)
        if o.typing is not None:
            cursor = "|" if int(time * 2) % 2 == 0 else " "
            text = _visible(o.typing)[-120:]
            box_h = size * 2.0
            top = h - box_h - 0.02 * h
            self.painter.rect(0.03 * w, top, 0.94 * w, box_h, (0.05, 0.07, 0.15, 0.92))
            self.painter.rect(0.03 * w, top + box_h - 2, 0.94 * w, 2, self.accent)
            ask = self.painter.text("Ask:", 0.04 * w, top + size * 0.45, size, self.accent)[0]
            self.painter.text(f"{text}{cursor}", 0.04 * w + ask + size * 0.5, top + size * 0.45,
                              size, self.text)  # fmt: skip
        elif o.interactive and o.state in ("ready", "finished", "stopped"):
            hint = "type a prompt and press Enter"
            self.painter.text(hint, 0.5 * w, 0.95 * h, size, self.dim, anchor="center")


class WebText(Layer):
    """The neural web's words, placed by `Panels.draw`."""

    stage = "web"

    def __init__(self, kit: Kit) -> None:
        self.panels = Panels(kit.painter, kit.look)

    def draw(self, frame: LayerInput) -> None:
        self.panels.draw(frame.scene, frame.overlay, frame.size, frame.time, frame.matrix)


class Chrome(Layer):
    """What every scene shows on top, placed by `Panels.draw_chrome`."""

    stage = "chrome"

    def __init__(self, kit: Kit) -> None:
        self.panels = Panels(kit.painter, kit.look)

    def draw(self, frame: LayerInput) -> None:
        self.panels.draw_chrome(frame.scene, frame.overlay, frame.size, frame.time)
