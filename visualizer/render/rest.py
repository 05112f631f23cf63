"""How fast the loop draws: the frame cap of a CPU renderer (which has no vsync to pace it),
lower over the loading screen, and lower still at rest. At rest the window draws only as fast
as its picture changes: a speaker's laptop waits through a talk's first minutes on battery.

The picture is still once nothing has happened for STILL_S: no key, click or remote command,
no frame or change of state from the source, no answer running (a paused one counts as still),
no recording, no scene crossfade or blackout fading, the camera neither dragged nor moving to
a shot. From QUIET_S on, the camera's slow sway eases to a stop (`sway`), so by then only the
backdrop's slow drift, a notice's fade and the like still change: the frame cap drops to
REST_FPS. While resting, the loop sleeps out each frame in slices of WAKE_S, asking the window
for input and the source for news, and draws at once when either comes. A video, whose clock
is a fixed step, and a kiosk's soak never rest.
"""

import time
from collections.abc import Callable

LOADING_FPS = 20  # the frame cap over the loading screen, on a CPU renderer (see cap)
REST_FPS = 4  # frames a second at rest: the backdrop's drift and a notice's fade, nothing else
STILL_S = 3.0  # nothing new for this long: at rest
QUIET_S = 1.0  # from here to STILL_S the camera's sway eases to a stop
WAKE_S = 0.02  # at rest, how often input and the source are asked for news


class Pace:
    """When the picture last changed, and how long each frame may take."""

    def __init__(self, frame_cap: int, rests: bool) -> None:
        """`frame_cap`: frames a second at most (a CPU renderer's; 0: none, vsync paces it);
        `rests`: a live window (or the bench's stand-in) on the real clock."""
        self.frame_cap, self.rests = frame_cap, rests
        self.changed = time.perf_counter()

    def stir(self) -> None:
        """Something changed the picture (or is about to): full pace from now."""
        self.changed = time.perf_counter()

    @property
    def quiet_s(self) -> float:
        return time.perf_counter() - self.changed if self.rests else 0.0

    @property
    def resting(self) -> bool:
        return self.quiet_s >= STILL_S

    @property
    def sway(self) -> float:
        """The share of the camera's sway kept: 1 until QUIET_S, 0 from STILL_S."""
        return min(max((STILL_S - self.quiet_s) / (STILL_S - QUIET_S), 0.0), 1.0)

    def cap(self, loading: bool) -> int:
        """The frame cap, lowered to LOADING_FPS while the loading screen is all there is to
        show: the model process is importing torch and loading on the same cores, and every
        frame of its slow dots and drift would take CPU time from it (in an Xvfb window on two
        cores, a cap of 10 rather than 60 brought the first word on screen 0.5 s sooner)."""
        return min(self.frame_cap, LOADING_FPS) if loading and self.frame_cap else self.frame_cap

    def sleep_out(self, start: float, loading: bool, news: Callable[[float], bool]) -> None:
        """The rest of the frame begun at `start`: at rest until 1/REST_FPS, woken as soon as
        `news(wait)` says something came (it is asked at least every WAKE_S, and may itself
        wait up to `wait` seconds for it); else as the cap says."""
        if self.resting:
            until = start + 1 / REST_FPS
            while (left := until - time.perf_counter()) > 0:
                slice_end = time.perf_counter() + min(WAKE_S, left)
                if news(min(WAKE_S, left)):
                    self.stir()
                    return
                # a source that does not wait (a saved run's player) must not make this spin
                time.sleep(max(0.0, slice_end - time.perf_counter()))
        elif cap := self.cap(loading):
            time.sleep(max(0.0, 1 / cap - (time.perf_counter() - start)))
