"""An orbit camera: slow drift when idle, mouse drag orbits, the wheel zooms."""

import math

import numpy as np

DRAG_RAD_PER_PX = 0.006
IDLE_AFTER_DRAG_S = 4.0  # drift resumes this long after the last drag
FOV_DEG = 40.0  # the vertical field of view


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
    def __init__(self, drift_deg_s: float) -> None:
        self.yaw = 0.0  # 0: looking at the tower from +z, the newest token in front
        self.pitch = 0.18
        self.distance = 9.5
        self.height = 0.0  # eye and target lifted by this much (a film's punch-in on a row)
        self.drift = math.radians(drift_deg_s)
        self._since_drag = IDLE_AFTER_DRAG_S
        self._time = 0.0

    def advance(self, dt: float) -> None:
        self._time += dt
        self._since_drag += dt
        if self._since_drag >= IDLE_AFTER_DRAG_S:  # a slow sway, so the front stays in view
            self.yaw += self.drift * dt * math.cos(self._time * 0.05)

    def drag(self, dx: float, dy: float) -> None:
        self.yaw -= dx * DRAG_RAD_PER_PX
        self.pitch = min(1.3, max(-0.6, self.pitch + dy * DRAG_RAD_PER_PX))
        self._since_drag = 0.0

    def zoom(self, steps: float) -> None:
        self.distance = min(14.0, max(2.0, self.distance * 0.9**steps))

    def matrix(self, aspect: float) -> np.ndarray:
        """Projection × view, column-major bytes order for GLSL (transpose of row-major)."""
        eye = self.distance * np.array([
            math.cos(self.pitch) * math.sin(self.yaw),
            math.sin(self.pitch),
            math.cos(self.pitch) * math.cos(self.yaw),
        ], np.float32) + np.array([0.0, self.height, 0.0], np.float32)  # fmt: skip
        target = np.array([0.0, self.height - 1.55, 0.0], np.float32)  # above the text
        return perspective(math.radians(FOV_DEG), aspect, 0.1, 50.0) @ look_at(eye, target)
