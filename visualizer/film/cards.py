"""The film's cards (title, closing, photosensitivity notice) and its captions (the road not
taken, the words the model almost said), and the layer that draws them.

The layer draws in the renderer's chrome stage, after every layer of the App, and so before the
flash limiter, which sees a cut to a card like any other picture. The words of each card come
from the runs: the model's own name, the prompts, the model's size read from its architecture.
"""

from dataclasses import dataclass

from visualizer.architecture import Architecture
from visualizer.config import rgb
from visualizer.render.layers.layer import Layer, LayerInput
from visualizer.render.renderer import Renderer

SUBTITLE = "what it is like to be a language model"
PROMPTS_SHOWN = 6


@dataclass(frozen=True)
class Credits:
    """What the cards say, from the runs."""

    model: str
    prompts: tuple[str, ...]
    size: str  # the model's size, from its architecture
    held: int = 0  # video frames whose flashes the limiter held back (-1: the limiter was off)


def model_size(arch: Architecture | None) -> str:
    """Blocks, width, heads and vocabulary, and the weights counted from those shapes (a dense
    MLP's; left out for experts or facts the architecture lacks)."""
    if arch is None:
        return "size unknown (the trace does not record the model's config)"
    words = [f"{arch.blocks} blocks", f"width {arch.width}"]
    if arch.heads:
        words.append(f"{arch.heads} heads")
    if arch.vocab:
        words.append(f"vocabulary {arch.vocab:,}")
    weights = _weights(arch)
    if weights:
        words.append(f"{weights / 1e6:.1f} M weights")
    return " · ".join(words)


def _weights(arch: Architecture) -> int:
    """The weights of the embedding, each block's attention and dense MLP projections and
    norms, the final norm and an untied unembedding; 0 where a fact is missing."""
    w, ff = arch.width, arch.mlp_width
    heads, kv, dim = arch.heads, arch.kv_heads, arch.head_dim
    if not (w and ff and heads and kv and dim and arch.vocab) or arch.moe:
        return 0
    gated = any("GLU" in step.label for step in arch.first.steps if step.kind == "mlp")
    block = 2 * w * heads * dim + 2 * w * kv * dim + (3 if gated else 2) * w * ff + 2 * w
    return arch.vocab * w * (1 if arch.tied else 2) + arch.blocks * block + w


def card_lines(card: str, credits: Credits) -> tuple[str, ...]:
    """The card's lines, the first its title."""
    if card == "title":
        return (credits.model, SUBTITLE, "cut by the model's own events · neuroweb film")
    if card == "closing":
        shown = tuple(f"“{p}”" for p in credits.prompts[:PROMPTS_SHOWN])
        more = len(credits.prompts) - PROMPTS_SHOWN
        return (credits.model, credits.size, "prompts:", *shown,
                *((f"and {more} more",) if more > 0 else ()))  # fmt: skip
    if credits.held < 0:
        return ("PHOTOSENSITIVITY WARNING",
                "This film was made with the flash limiter OFF.",
                "It may flash more than three times a second.",
                "Do not watch it if flashing light can harm you.")  # fmt: skip
    return ("PHOTOSENSITIVITY NOTICE",
            "This film has rapid cuts and flashing light.",
            f"The flash limiter held flashes back in {credits.held:,} frames,",
            "keeping them to three a second or fewer (WCAG 2.3.1).")  # fmt: skip


class FilmCards(Layer):
    """A card over the whole picture, or a caption over the scene."""

    stage = "chrome"

    def __init__(self, renderer: Renderer) -> None:
        self.painter = renderer.painter
        look = renderer.look
        self.background = (*rgb(look.background), 1.0)
        self.ink, self.accent = (*rgb(look.text), 1.0), (*rgb(look.accent), 1.0)
        self.dim = (*rgb(look.text), 0.7)
        self.lines: tuple[str, ...] = ()  # the card shown (empty: none)
        self.caption = ""

    @classmethod
    def attach(cls, renderer: Renderer) -> "FilmCards":
        """Drawn by `renderer` from now on, last of its chrome stage."""
        cards = cls(renderer)
        renderer._stages["chrome"].append(cards)  # noqa: SLF001  the film's own layer
        return cards

    def draw(self, frame: LayerInput) -> None:
        if not (self.lines or self.caption):
            return
        w, h = frame.size
        p = self.painter
        p.begin(frame.size)
        if self.lines:
            p.rect(0, 0, w, h, self.background)
            title, *rest = self.lines
            size = self._fit(title, round(0.085 * h), 0.9 * w, bold=True)
            top = 0.5 * h - (size * 1.4 + len(rest) * 0.06 * h) / 2
            warning = title.startswith("PHOTOSENSITIVITY")
            p.text(title, w / 2, top, size, self.accent if warning else self.ink, bold=True,
                   anchor="center")  # fmt: skip
            y = top + size * 1.4
            for line in rest:
                small = self._fit(line, round(0.036 * h), 0.9 * w)
                p.text(line, w / 2, y, small, self.dim, anchor="center")
                y += 0.06 * h
        if self.caption:
            size = self._fit(self.caption, round(0.05 * h), 0.9 * w, bold=True)
            width = self.painter.fonts.width(self.caption, size, True)
            p.rect((w - width) / 2 - 0.4 * size, 0.11 * h, width + 0.8 * size, 1.5 * size,
                   (0, 0, 0, 0.65))  # fmt: skip
            p.text(self.caption, w / 2, 0.11 * h + 0.2 * size, size, self.accent, bold=True,
                   anchor="center")  # fmt: skip
        p.flush()

    def _fit(self, text: str, size: int, width: float, bold: bool = False) -> int:
        """`size`, or smaller until `text` fits `width`."""
        measured = self.painter.fonts.width(text, size, bold)
        return max(8, int(size * min(1.0, width / max(measured, 1))))
