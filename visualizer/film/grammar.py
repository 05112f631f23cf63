"""The edit: the film's runs and their events → a plan of shots and, for each video frame, what
the picture and the sound do (`Step`). Plain data; the director (cut.py) plays it through the
App, the soundtrack (soundtrack.py) plays the same plan, and the timeline (timeline.py) writes
its shots.

Time runs on a grid of ticks, sixteenth notes at `bpm` (frame of tick i: round(i × frames per
tick)). Tokens arrive on ticks; a token that carries an event the edit cuts on waits for the
next beat, so every cut lands on a beat. The moves, each caused by one event:

- `stutter` (an entropy spike): the token's arrival and its first tick of picture and sound,
  repeated 2-4 times (more the higher the entropy), its word flashed once (a flash at each
  repeat was two or more flashes a second: the limiter held them back, and EA's IRIS
  analyser warned);
- `punch` (the lens's top word changing late in the tower): a cut in close on that row;
- `rewind` (a token that was not the first choice): the last few tokens backwards, picture and
  sound, then the road not taken shown as a ghost, then the token taken;
- `mix` (a runner-up nearly as likely as the favourite): the next tokens' runner-ups set as a
  line of their own, "almost: …", against what the model did say;
- `poster`: the architecture scene, live, cut to at the first event past the middle;
- `ablation`: a run with a part switched off, cut to where it parts from the untouched run
  (which the picture shows beside it);
- `play`: a run starting (its `answer` event), wide; `card`: the title and the closing card.
"""

import math
import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace

from visualizer.film.events import Event
from visualizer.frame import Frame

TICKS = 4  # per beat
BAR = 4 * TICKS
MIN_GAP = 3 * TICKS  # between two cuts
REWIND_BACK = 4  # tokens
REWIND_FRAMES = 2  # video frames per token going back
MIX_TOKENS = 8
FLASH_FRAMES = 4  # a stutter's word flash fades over these
MOVES = {"spike": "stutter", "flip": "punch", "detour": "rewind", "near_miss": "mix"}
WIDE = (0.0, 0.18, 9.5, 0.0)  # yaw, pitch, distance, height: the camera's own start


@dataclass(frozen=True)
class Step:
    """One video frame: done before the App draws it, in this order."""

    restore: int = -1  # the frame whose saved state comes back first (-1: none)
    save: bool = False  # the state now is saved, under this frame's number
    show: tuple[tuple[int, int], ...] = ()  # (run, position): frames entering the scene
    ghost: tuple[int, int] | None = None  # (run, position) shown with the first choice's token
    sound: tuple[str, int] = ("new", 0)  # new samples, or ("copy" | "reverse", frame)
    flash: float = 0.0
    word: str = ""
    caption: str = ""


@dataclass(frozen=True)
class Shot:
    """A clip: video frames start..end-1, its move, the event that cut to it."""

    start: int
    end: int
    move: str
    event: Event | None
    run: int = -1
    camera: tuple[float, float, float, float] = WIDE
    scene: float = 0.0  # 0: the neural web, 1: the architecture
    card: str = ""  # which card ("title", "closing", "notice")


@dataclass(frozen=True)
class Plan:
    fps: int
    bpm: float
    steps: tuple[Step, ...]
    shots: tuple[Shot, ...]

    @property
    def cuts(self) -> list[Shot]:
        """The shots that a cut caused by an event begins."""
        return [s for s in self.shots if s.event is not None and s.start > 0]

    def frame_of(self, tick: int) -> int:
        return round(tick * self.fps * 60 / self.bpm / TICKS)


def road_not_taken(frames: Sequence[Frame], t: int) -> Frame:
    """Frame t as if the model had taken its first choice there (a detour's ghost)."""
    before = frames[t - 1]
    return replace(frames[t], token_id=int(before.topk_ids[0]), text=before.topk_text[0])


def percent(p: float) -> str:
    return f"{100 * p:.0f}%"


class _Cutter:
    """Appends steps frame by frame and shots as they are cut."""

    def __init__(self, fps: int, bpm: float, rng: random.Random, rows: int) -> None:
        self.fps, self.bpm, self.rng, self.rows = fps, bpm, rng, rows
        self.steps: list[Step] = []
        self.shots: list[Shot] = []
        self.tick = 0
        self.caption = ""
        self.saved: dict[tuple[int, int], int] = {}  # (run, position) → frame saved before it
        self.used: Counter = Counter()
        self.last_cut = -MIN_GAP
        self.mixing: list[str] = []  # the runner-ups said so far, while a mix lasts
        self.mix_left = 0

    def frame(self, tick: int) -> int:
        return round(tick * self.fps * 60 / self.bpm / TICKS)

    def until(self, tick: int) -> None:
        """Frames with nothing new up to tick `tick`."""
        while len(self.steps) < self.frame(tick):
            self.put(Step())
        self.tick = max(self.tick, tick)

    def put(self, step: Step) -> None:
        if not step.caption and self.caption:
            step = replace(step, caption=self.caption)
        self.steps.append(step)

    def realign(self) -> None:
        """Onto the grid again after frames put one by one."""
        self.tick = next(t for t in range(self.tick, self.tick + 10**6)
                         if self.frame(t) >= len(self.steps))  # fmt: skip
        self.until(self.tick)

    def cut(self, move: str, event: Event | None, run: int = -1, camera=None,
            scene: float = 0.0, card: str = "") -> None:  # fmt: skip
        start = len(self.steps)
        if self.shots:
            self.shots[-1] = replace(self.shots[-1], end=start)
        camera = camera or self.wide()
        self.shots.append(Shot(start, start, move, event, run, camera, scene, card))
        self.caption, self.mix_left = "", 0
        if event is not None:
            self.last_cut = self.tick
            self.used[event.kind] += 1

    def wide(self) -> tuple[float, float, float, float]:
        r = self.rng
        return (r.uniform(-math.pi, math.pi), r.uniform(0.02, 0.6), r.uniform(7.0, 11.0), 0.0)

    def close(self, row: int) -> tuple[float, float, float, float]:
        """In on lensed row `row` (layout: the rows spread over TOWER_HEIGHT 2.6 about 0,
        and the camera looks at 1.55 below the centre; height lifts both)."""
        y = -1.3 + 2.6 * row / max(self.rows - 1, 1)
        r = self.rng
        return (r.uniform(-math.pi, math.pi), r.uniform(-0.1, 0.25), r.uniform(2.6, 3.6),
                y + 1.55)  # fmt: skip

    def show(self, run: int, t: int, **more) -> None:
        """Token t of run enters now, the state before it saved."""
        self.saved[(run, t)] = len(self.steps)
        self.put(Step(save=True, show=((run, t),), **more))


def plan_film(runs: Sequence[Sequence[Frame]], events: Sequence[Sequence[Event]],
              length_s: float, fps: int, bpm: float, seed: int,
              ablated: int = -1) -> Plan:  # fmt: skip
    """The edit of `runs` (their `events`) into `length_s` seconds. `ablated`: which run is
    the ablation interlude's (-1: none)."""
    rows = runs[0][0].hidden.shape[0]
    c = _Cutter(fps, bpm, random.Random(seed), rows)
    total = max(2 * BAR, round(length_s * bpm / 60 * TICKS))
    long = length_s >= 30
    card = (2 if long else 1) * BAR
    c.cut("card", None, card="title")
    c.until(card)
    plain = [i for i in range(len(runs)) if i != ablated]
    interlude = 2 * BAR if long and ablated >= 0 else 0
    body = total - 2 * card - interlude
    order: list[int] = list(plain)
    if interlude:
        order.insert(max(1, (2 * len(plain)) // 3), ablated)
    shares = _shares(body, [i for i in order if i != ablated], interlude, order)
    poster_at = card + body // 2 if long else None
    last = None
    for run in order:
        end = c.tick + shares[run]
        poster_at, last = _play(c, run, runs[run], events[run], end, poster_at,
                                ablation=run == ablated)  # fmt: skip
    run, t = last
    c.until(c.tick if c.tick % TICKS == 0 else (c.tick // TICKS + 1) * TICKS)
    shown = sum(1 for s in c.steps for r, _ in s.show if r == run)
    c.cut("card", Event(run, t, "end", float(shown), (runs[run][t].text,)), card="closing")
    c.until(max(total, c.tick + card))
    c.cut("end", None)
    return Plan(fps, bpm, tuple(c.steps), tuple(c.shots[:-1]))


def _shares(body: int, plain: list[int], interlude: int, order: list[int]) -> dict[int, int]:
    """Ticks per run, whole beats: the ablation interlude its own, the rest shared alike."""
    shares = {run: interlude for run in order if run not in plain}
    each = (body // max(1, len(plain))) // TICKS * TICKS
    for i, run in enumerate(plain):
        shares[run] = each if i < len(plain) - 1 else body - each * (len(plain) - 1)
    return shares


def _play(c: _Cutter, run: int, frames: Sequence[Frame], events: Sequence[Event], end: int,
          poster_at: int | None, ablation: bool) -> tuple[int | None, tuple[int, int]]:  # fmt: skip
    """The run from its first generated token, until tick `end` or its last token; returns
    when the poster is still due and the last (run, position) shown."""
    by_token: dict[int, list[Event]] = {}
    for e in events:
        by_token.setdefault(e.token, []).append(e)
    first = next(i for i, f in enumerate(frames) if not f.is_prompt)
    opening = next((e for e in events if e.kind == "answer"), None)
    if ablation:
        opening = next((e for e in events if e.kind == "parted"), opening)
    start = opening.token if opening is not None else first
    generated = len(frames) - first
    spacing = max(1, min(4, round(0.7 * (end - c.tick) / max(1, generated))))
    c.cut("ablation" if ablation else "play", opening, run)
    c.put(Step(show=tuple((run, i) for i in range(start + 1))))  # at once, as a prompt is
    shown, t = start, start + 1
    while t < len(frames):
        at = c.tick + spacing
        event = _choose(c, by_token.get(t, []), run, t, at)
        if event is not None:
            at = -(-at // TICKS) * TICKS  # on the beat
        poster = event is not None and poster_at is not None and poster_at <= at <= end - 2 * BAR
        if at + (BAR // 2 if event else 0) > end:
            break
        c.until(at)
        if poster:
            c.cut("poster", event, run, scene=1.0)
            c.show(run, t)
            poster_at, c.last_cut = None, c.tick + 2 * BAR - MIN_GAP  # two bars of it at least
        elif event is not None:
            _move(c, frames, run, t, event)
        else:
            _mixed(c, frames, t)
            c.show(run, t)
        shown, t = t, t + 1
    c.until(end)
    return poster_at, (run, shown)


def _choose(c: _Cutter, found: list[Event], run: int, t: int, at: int) -> Event | None:
    """The event at token t that the edit cuts on, if a cut may come now: the move used least
    so far (ties: in the order of MOVES); a rewind needs tokens of this run to go back to."""
    if at - c.last_cut < MIN_GAP:
        return None
    usable = [e for e in found if e.kind in MOVES
              and (e.kind != "detour" or (run, t - REWIND_BACK) in c.saved)]  # fmt: skip
    if not usable:
        return None
    order = list(MOVES)
    return min(usable, key=lambda e: (c.used[e.kind], order.index(e.kind)))


def _mixed(c: _Cutter, frames: Sequence[Frame], t: int) -> None:
    """While a mix lasts: its line grows by the word the model almost said at t."""
    if c.mix_left <= 0:
        return
    c.mix_left -= 1
    before = frames[t - 1]
    other = next((s for i, s in zip(before.topk_ids, before.topk_text, strict=True)
                  if int(i) != frames[t].token_id), "")  # fmt: skip
    c.mixing.append(other)
    c.caption = "almost: " + "".join(c.mixing).strip()


def _move(c: _Cutter, frames: Sequence[Frame], run: int, t: int, event: Event) -> None:
    move = MOVES[event.kind]
    if move == "punch":
        c.cut("punch", event, run, camera=c.close(event.row))
        c.show(run, t)
    elif move == "mix":
        c.cut("mix", event, run)
        c.mixing, c.mix_left = [], MIX_TOKENS
        c.caption = "almost: …"
        c.show(run, t)
    elif move == "stutter":
        _stutter(c, frames, run, t, event)
    else:
        _rewind(c, frames, run, t, event)


def _stutter(c: _Cutter, frames: Sequence[Frame], run: int, t: int, event: Event) -> None:
    yaw, pitch, distance, height = c.shots[-1].camera
    c.cut("stutter", event, run, camera=(yaw, pitch, 0.8 * distance, height))
    word = frames[t].text.strip()
    k0, width = len(c.steps), c.frame(c.tick + 1) - c.frame(c.tick)
    for i in range(width):
        flash = max(0.0, 1 - i / FLASH_FRAMES)
        if i == 0:
            c.show(run, t, flash=flash, word=word)
        else:
            c.put(Step(flash=flash, word=word))
    repeats = 2 + (event.value >= 3.0) + (event.value >= 3.8)
    for _ in range(repeats):
        for i in range(width):
            original = c.steps[k0 + i]
            c.put(replace(original, save=False, restore=k0 if i == 0 else -1,
                          sound=("copy", k0 + i), flash=0.0, word=""))  # fmt: skip
    c.realign()


def _rewind(c: _Cutter, frames: Sequence[Frame], run: int, t: int, event: Event) -> None:
    c.cut("rewind", event, run)
    taken, other = (w.strip() or repr(w) for w in event.words)
    c.caption = f"took {taken} ({percent(event.value)})"
    c.show(run, t)
    c.until(c.tick + 1)
    back = len(c.steps)
    c.caption = "◀◀"
    for j in range(REWIND_BACK):
        for i in range(REWIND_FRAMES):
            mirror = back - 1 - (j * REWIND_FRAMES + i)
            c.put(Step(restore=c.saved[(run, t - j)] if i == 0 else -1,
                       sound=("reverse", mirror)))  # fmt: skip
    c.realign()
    c.caption = f"not taken: {other} ({percent(event.other)})"
    c.put(Step(restore=c.saved[(run, t)], ghost=(run, t)))
    c.until(c.tick + 2)
    c.caption = f"taken: {taken}"
    c.put(Step(restore=c.saved[(run, t)], show=((run, t),)))
    c.until(c.tick + 1)
    c.caption = ""
