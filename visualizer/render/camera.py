"""An orbit camera: slow drift when idle, mouse drag orbits, the wheel zooms; with a direction
(render/direction.py) it also moves in close to what the model does by itself.

Composed for the frame it draws: in a wide frame the tower stands on the left third line (a
shift of the projection, so the view itself is unchanged), with the logit lens's words beside
it, the candidates in the right third and the answer along the bottom."""

import math

import numpy as np

from visualizer.frame import Frame
from visualizer.render.direction import Direction

DRAG_RAD_PER_PX = 0.006
IDLE_AFTER_DRAG_S = 4.0  # drift resumes this long after the last drag
FOV_DEG = 40.0  # the vertical field of view
THIRD = -1 / 3  # the tower's centre on the left third line, in normalised x (-1..1)
WIDE_ASPECT = 16 / 9  # frames this wide or wider stand it there; a square one in the middle


def perspective(fov_y: float, aspect: float, near: float, far: float) -> np.ndarray:
    f = 1 / math.tan(fov_y / 2)
    return np.array([
        [f / aspect, 0, 0, 0],
        [0, f, 0, 0],
        [0, 0, (far + near) / (near - far), 2 * far * near / (near - far)],
        [0, 0, -1, 0],
    ], np.float32)  # fmt: skip


def look_at(eye: np.ndarray, target: np.ndarray) -> np.ndarray:
    forward = target - eye
    forward /= np.linalg.norm(forward)
    right = np.cross(forward, [0.0, 1.0, 0.0])
    right /= np.linalg.norm(right)
    up = np.cross(right, forward)
    view = np.eye(4, dtype=np.float32)
    view[0, :3], view[1, :3], view[2, :3] = right, up, -forward
    view[:3, 3] = -view[:3, :3] @ eye
    return view


class Camera:
    def __init__(self, drift_deg_s: float, directed: bool = False) -> None:
        self.yaw = 0.0  # 0: looking at the tower from +z, the newest token in front
        self.pitch = 0.18
        self.distance = 9.5
        self.height = 0.0  # eye and target lifted by this much (a film's punch-in on a row)
        self.drift = math.radians(drift_deg_s)
        self._since_drag = IDLE_AFTER_DRAG_S
        self._time = 0.0
        self.direction = Direction() if directed else None
        self._by_mouse = False  # the mouse has had the camera since the direction last did

    def see(self, frame: Frame) -> None:
        """A frame entered the scene (a directed camera looks for what to move to)."""
        if self.direction is not None:
            self.direction.see(frame)

    @property
    def still(self) -> bool:
        """Neither held by the mouse nor moving to a shot (render/rest.py)."""
        settled = self.direction is None or self.direction.settled
        return self._since_drag >= IDLE_AFTER_DRAG_S and settled

    def advance(self, dt: float, sway: float = 1.0) -> None:
        """`sway`: the share of the slow sway kept (it eases to a stop at rest)."""
        self._time += dt
        self._since_drag += dt
        framing = self.direction.advance(dt) if self.direction is not None else None
        if self._since_drag < IDLE_AFTER_DRAG_S:
            self._by_mouse = True
            return
        # a slow sway, so the front stays in view
        self.yaw += self.drift * sway * dt * math.cos(self._time * 0.05)
        if framing is None:
            return
        if self._by_mouse:  # the mouse has let go: the direction takes the camera from here
            self.direction.resume(self.height, self.distance)
            self._by_mouse = False
            framing = self.direction.framing
        self.height, self.distance = framing

    def frame(self, framing: str, blocks: int) -> None:
        """A cue's framing ("wide", "answer" or "block N" of a model of `blocks` blocks): eased
        there and held; "wide" lets go (Direction.hold, release)."""
        if self.direction is None:  # a desk's camera moves only when a cue frames a shot
            self.direction = Direction(auto=False)
        if framing == "wide":
            self.direction.release()
            return
        row = blocks if framing == "answer" else int(framing.split()[1]) + 1  # lensed rows
        if 0 < row <= blocks:
            self.direction.hold(Direction.close_on(row, blocks + 1, f"cue: {framing}"))

    def drag(self, dx: float, dy: float) -> None:
        self.yaw -= dx * DRAG_RAD_PER_PX
        self.pitch = min(1.3, max(-0.6, self.pitch + dy * DRAG_RAD_PER_PX))
        self._since_drag = 0.0

    def zoom(self, steps: float) -> None:
        self.distance = min(14.0, max(2.0, self.distance * 0.9**steps))
        self._since_drag = 0.0

    def matrix(self, aspect: float) -> np.ndarray:
        """Projection × view, column-major bytes order for GLSL (transpose of row-major)."""
        eye = self.distance * np.array([
            math.cos(self.pitch) * math.sin(self.yaw),
            math.sin(self.pitch),
            math.cos(self.pitch) * math.cos(self.yaw),
        ], np.float32) + np.array([0.0, self.height, 0.0], np.float32)  # fmt: skip
        target = np.array([0.0, self.height - 1.55, 0.0], np.float32)  # above the text
        shift = np.eye(4, dtype=np.float32)
        shift[0, 3] = THIRD * min(max((aspect - 1) / (WIDE_ASPECT - 1), 0.0), 1.0)
        projection = perspective(math.radians(FOV_DEG), aspect, 0.1, 50.0)
        return shift @ projection @ look_at(eye, target)
