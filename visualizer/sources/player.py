"""A finished run's frames as a FrameSource: each released when the clock reaches its time.

`render` plays a run on its fixed token schedule; the kiosk replays its last answer while its
model loads (looping, with a rest between rounds). Nothing is generated: a trace answers no new
prompt.
"""

from collections.abc import Callable, Sequence
from dataclasses import replace

from visualizer.errors import UserError
from visualizer.frame import Frame
from visualizer.handoff import Batch, Status


def schedule(frames: Sequence[Frame], token_rate: float, lead_s: float) -> list[float]:
    """When each frame is due: the prompt's at once, then one generated token every
    1/token_rate s from `lead_s` on."""
    times, generated = [], 0
    for frame in frames:
        if frame.is_prompt:
            times.append(0.0)
        else:
            times.append(lead_s + generated / token_rate)
            generated += 1
    return times


class TracePlayer:
    def __init__(
        self,
        frames: Sequence[Frame],
        times: Sequence[float],
        now: Callable[[], float],
        status: Status,
        rest_s: float | None = None,
    ) -> None:
        """`times`: when each frame is due, in seconds after start(); `now`: the clock;
        `status`: what it says it is (model, architecture, prompt); `rest_s`: loop, resting
        this long between rounds (None: play once, then say "finished")."""
        self.frames, self.times, self.now = tuple(frames), tuple(times), now
        self.rest_s = rest_s
        self.name = "a recorded run"
        self._status = status
        self._next = 0
        self._start = 0.0
        self._round_s = (max(self.times, default=0.0) + rest_s) if rest_s is not None else 0.0

    def start(self, at: float | None = None) -> "TracePlayer":
        """Play from the clock's time `at` on (now, by default)."""
        self._start, self._next = self.now() if at is None else at, 0
        return self

    def drain(self, timeout: float = 0.0) -> Batch:
        """The frames due by now (never waits: a trace has everything at hand)."""
        elapsed = self.now() - self._start
        due = []
        while self.frames:
            if self._next == len(self.frames):
                if self.rest_s is None:
                    break
                if elapsed < self._round_s:
                    break
                self._start += self._round_s  # the next round
                elapsed -= self._round_s
                self._next = 0
            if self.times[self._next] > elapsed:
                break
            due.append(self.frames[self._next])
            self._next += 1
        done = self._next == len(self.frames) and self.rest_s is None
        status = replace(self._status, state="finished" if done else "generating", request=1)
        return Batch(tuple(due), 0, status, None, recorded=True)

    def generate(self, prompt: str, gen=None, detail=None, interventions=None) -> int:
        raise UserError("a recorded run answers no new prompt")

    def intervene(self, interventions) -> None:
        raise UserError("a recorded run cannot be changed")

    def cancel(self) -> None:
        pass

    def restart(self, why: str = "") -> None:
        self.start()

    def stop(self, timeout: float = 1.0) -> None:
        pass

    @property
    def alive(self) -> bool:
        return True
