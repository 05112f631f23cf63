"""What the model did that the film cuts on: events found in a run's frames, each at the
position whose frame the picture shows when the cut lands.

A frame t carries the model's distribution for the token after it (its candidates, entropy and
logit lens), and the token t itself was sampled from frame t-1's distribution. So:

- `answer`: the first generated token of a run (value: how sure the model was of it);
- `spike`: frame t's entropy is a spike after frame t-1's (moments.is_spike; value: the
  entropy, nats);
- `flip`: the logit lens's top word changes late in the tower and stays so to the output
  (moments.lens_flip; value: the row where it changed; words: before, after);
- `detour`: token t is not the model's first choice at t-1 (value: the probability it had;
  words: taken, the road not taken, and that one's probability in `other`);
- `near_miss`: frame t's runner-up had NEAR_MISS of the favourite's probability or more
  (value: that share; words: favourite, runner-up);
- `parted`: an intervened run's first token where the untouched run (its ghost) took another
  (value: the ghost token's id; words: taken, untouched);
- `end`: the last token of a run that the film shows (found by the edit, not here).
"""

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

from visualizer.frame import Frame
from visualizer.moments import is_spike, lens_flip

NEAR_MISS = 0.6  # the runner-up's probability ÷ the favourite's
KINDS = ("answer", "spike", "flip", "detour", "near_miss", "parted", "end")


@dataclass(frozen=True)
class Event:
    run: int  # which of the film's runs
    token: int  # the run position (frame index) the picture shows at the cut
    kind: str  # one of KINDS
    value: float
    words: tuple[str, ...] = ()
    row: int = -1  # flip: the lensed row (0 the embedding, r block r's output)
    other: float = 0.0  # detour: the road not taken's probability

    def metadata(self) -> dict:
        """As the timeline keeps it (plain JSON types)."""
        out = asdict(self)
        out["words"] = list(self.words)
        return out


def taken_probability(frames: Sequence[Frame], t: int) -> float:
    """The probability frame t-1 gave token t (0 where it was not among the candidates)."""
    before = frames[t - 1]
    hits = np.flatnonzero(before.topk_ids == frames[t].token_id)
    return float(before.topk_probs[hits[0]]) if hits.size else 0.0


def find_events(frames: Sequence[Frame], run: int) -> list[Event]:
    """Every event of one run's generated positions, in order of position."""
    found: list[Event] = []
    first = next((i for i, f in enumerate(frames) if not f.is_prompt), None)
    if first is None:
        return found
    for t in range(first, len(frames)):
        f = frames[t]
        if t == first:
            found.append(Event(run, t, "answer", round(taken_probability(frames, t), 4)
                               if t else 1.0, (f.text,)))  # fmt: skip
        found += _events_at(frames, t, run)
    return found


def _events_at(frames: Sequence[Frame], t: int, run: int) -> list[Event]:
    f, before = frames[t], frames[t - 1] if t else None
    found = []
    if before is not None and is_spike(f.entropy, before.entropy):
        found.append(Event(run, t, "spike", round(f.entropy, 4), (f.text,)))
    flip = lens_flip(f)
    if flip is not None:
        row, was, now = flip
        found.append(Event(run, t, "flip", float(row), (was, now), row=row))
    if before is not None and int(before.topk_ids[0]) != f.token_id:
        taken = taken_probability(frames, t)
        found.append(Event(run, t, "detour", round(taken, 4), (f.text, before.topk_text[0]),
                           other=round(float(before.topk_probs[0]), 4)))  # fmt: skip
    probs = f.topk_probs
    if len(probs) > 1 and probs[0] > 0 and probs[1] / probs[0] >= NEAR_MISS:
        found.append(Event(run, t, "near_miss", round(float(probs[1] / probs[0]), 4),
                           (f.topk_text[0], f.topk_text[1])))  # fmt: skip
    ghost = f.ghost
    if ghost is not None and ghost.token_id != f.token_id and not f.is_prompt:
        parted_before = any(g.ghost is not None and g.ghost.token_id != g.token_id
                            for g in frames[:t] if not g.is_prompt)  # fmt: skip
        if not parted_before:
            found.append(Event(run, t, "parted", float(ghost.token_id), (f.text, ghost.text)))
    return found


def check_event(frames: Sequence[Frame], event: Event) -> bool:
    """The event is what the frames say at its position (a test of a timeline against its
    trace): found there again, same kind and value."""
    if event.kind == "end":
        return 0 <= event.token < len(frames) and not frames[event.token].is_prompt
    return event in find_events(frames, event.run)
