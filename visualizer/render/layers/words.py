"""Words as the audience reads them, and fitted to the room they have: a token's label (each
distinct token differently, nothing shown as empty quotes), the lens's caption, and lines
broken to a width in pixels. Plain text and font widths, no drawing: the web's panels and the
architecture scene both set their words through these."""

import re
from collections.abc import Sequence

from visualizer.features import Token
from visualizer.render.layers.text import Fonts

SPECIAL = re.compile(r"^\s*<\|[^|]*\|>\s*$")  # chat-template markers such as <|im_end|>


def visible(text: str) -> str:
    """`text` on one line: a newline shown as '¶', a tab as a space."""
    return text.replace("\n", " ¶ ").replace("\t", " ")


def token_label(text: str) -> str:
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
    label = token_label(text)[:limit]
    return label if any(c.isalpha() for c in label) else f"“{label}”"


def quoted_token(text: str) -> str:
    """A token named inside a sentence: a word in quotes, spaces alone or nothing by name
    (empty quotes would say nothing)."""
    return _spaces(text) if not text.strip(" ") else f"“{token_label(text)[:20]}”"


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


def wrap(text: str, fonts: Fonts, size: int, width: float) -> list[str]:
    """Words into lines no wider than `width` pixels (a long word gets a line of its own)."""
    lines: list[str] = []
    for word in text.split(" "):
        if lines and fonts.width(f"{lines[-1]} {word}", size) <= width:
            lines[-1] = f"{lines[-1]} {word}"
        else:
            lines.append(word)
    return lines


def fitted(fonts: Fonts, word: str, tail: str, room: float, size: int, bold: bool) -> str:
    """`word` + `tail`, the word cut short (…) until the whole is at most `room` wide."""
    text = word + tail
    while len(word) > 1 and fonts.width(text, size, bold) > room:
        word = word[:-1]
        text = f"{word}…{tail}"
    return text
