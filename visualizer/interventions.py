"""What a run changes in the model, as plain data (the window, traces and the wire carry it;
`model/intervene.py` applies it).

- an ablation zeroes a part's output: `mlp:K` (block K's MLP), `attn:K` (its attention), or
  `head:K.H` (one head: its slice of the attention's output before the output projection);
- a steering vector adds `scale` × (the mean residual stream after block K over the prompt
  "plus" − the same over "minus", their first positions left out) to block K's output at every
  position: activation addition.

Spelled on the command line as `--ablate mlp:10 --ablate head:3.7` and
`--steer '8:2:I love you|I hate you'` (block, scale, then the two contrast prompts split by
"|").
"""

import math
from dataclasses import dataclass

from visualizer.errors import UserError

KINDS = ("mlp", "attn", "head")
MAX_STEER_SCALE = 1000.0  # |scale|: far past any that leaves a model speaking (2–20 is usual)
MAX_INDEX_DIGITS = 6  # a block or head number: no model has a million blocks


@dataclass(frozen=True)
class Ablation:
    kind: str  # "mlp" | "attn" | "head"
    block: int
    head: int = -1

    @property
    def spec(self) -> str:
        return f"{self.kind}:{self.block}" + (f".{self.head}" if self.kind == "head" else "")


@dataclass(frozen=True)
class Steering:
    block: int
    scale: float
    plus: str
    minus: str

    @property
    def spec(self) -> str:
        return f"{self.block}:{self.scale:g}:{self.plus}|{self.minus}"


@dataclass(frozen=True)
class Interventions:
    ablations: tuple[Ablation, ...] = ()
    steering: tuple[Steering, ...] = ()

    @property
    def active(self) -> bool:
        return bool(self.ablations or self.steering)

    @property
    def specs(self) -> tuple[str, ...]:
        """As the command line spells them: what the scenes mark, traces keep."""
        return tuple(a.spec for a in self.ablations) + tuple(
            f"steer {s.spec}" for s in self.steering)  # fmt: skip

    def blocks(self) -> set[int]:
        return {a.block for a in self.ablations} | {s.block for s in self.steering}

    def check(self, blocks: int, heads: int | None) -> None:
        """UserError for a block or head the model does not have."""
        for a in self.ablations:
            if not 0 <= a.block < blocks:
                raise UserError(f"--ablate {a.spec}: the model has blocks 0–{blocks - 1}")
            if a.kind == "head" and heads is not None and not 0 <= a.head < heads:
                raise UserError(f"--ablate {a.spec}: block {a.block} has heads 0–{heads - 1}")
        for s in self.steering:
            if not 0 <= s.block < blocks:
                raise UserError(f"--steer {s.spec}: the model has blocks 0–{blocks - 1}")

    def toggled(self, ablation: Ablation) -> "Interventions":
        """With `ablation` added, or taken away if it was there (a key in the window)."""
        if ablation in self.ablations:
            return Interventions(tuple(a for a in self.ablations if a != ablation), self.steering)
        return Interventions((*self.ablations, ablation), self.steering)


def parse_ablation(text: str, flag: str = "--ablate") -> Ablation:
    kind, _, where = text.strip().partition(":")
    block, _, head = where.partition(".")
    ok = kind in KINDS and _index(block) and (_index(head) if kind == "head" else not head)
    if not ok:
        raise UserError(f"{flag} {text}: expected mlp:BLOCK, attn:BLOCK or head:BLOCK.HEAD")
    return Ablation(kind, int(block), int(head) if head else -1)


def parse_steering(text: str, flag: str = "--steer") -> Steering:
    block, _, rest = text.partition(":")
    scale, _, prompts = rest.partition(":")
    plus, bar, minus = prompts.partition("|")
    try:
        value = float(scale)
    except ValueError:
        value = float("nan")
    if not _index(block.strip()) or value != value or not bar or not plus or not minus:
        raise UserError(f"{flag} {text}: expected BLOCK:SCALE:PLUS|MINUS, for example "
                        "'8:2:I love you|I hate you'")  # fmt: skip
    if not (math.isfinite(value) and abs(value) <= MAX_STEER_SCALE):
        raise UserError(f"{flag} {text}: the scale must be a number in "
                        f"[-{MAX_STEER_SCALE:g}, {MAX_STEER_SCALE:g}]")  # fmt: skip
    return Steering(int(block), value, plus, minus)


def _index(text: str) -> bool:
    return text.isascii() and text.isdigit() and len(text) <= MAX_INDEX_DIGITS


def interventions_from(ablate: tuple[str, ...], steer: tuple[str, ...],
                       where: str = "") -> Interventions:  # fmt: skip
    """From the spellings of a preset (`where`: its key) or the command line."""
    return Interventions(
        tuple(parse_ablation(a, where + "ablate" if where else "--ablate") for a in ablate),
        tuple(parse_steering(s, where + "steer" if where else "--steer") for s in steer),
    )
