"""The one interface of a layer: what it is built from (`Kit`), what it is given every frame
(`LayerInput`, with the app's `Overlay`) and what it does with it (`Layer`). The renderer builds
its layers from one list and only ever calls these, so a new layer is one entry in that list
(renderer.LAYERS)."""

import math
from dataclasses import dataclass, field
from functools import cached_property
from typing import ClassVar, Literal, Protocol, runtime_checkable

import numpy as np

from visualizer.architecture import Architecture
from visualizer.config import LookSettings, VenueSettings
from visualizer.features import WAVES, SceneState
from visualizer.gl.shaders import ShaderLibrary
from visualizer.render import layout
from visualizer.render.camera import FOV_DEG, Camera
from visualizer.render.layers.text import Painter

# where a layer draws, in the order the renderer draws them:
# light: the web's 3D light, added up at the render scale into the bloom's scene (with tokens)
# backdrop: the web's backdrop, drawn by the bloom into its quarter-size glow layer
# web: the neural web's 2D part, over its finished 3D part at the output's size
# architecture: the architecture scene, over the web or in its place
# chrome: what every scene shows on top (the audience's picture ends here)
# operator: the operator's chrome (REC, the prompt box, the HUD, notices, errors), drawn over the
#   finished picture when the renderer is asked to, or after a recording took it (App.frame)
LONG_AGO = 1e3  # seconds: an arrival that shows nothing any more
Stage = Literal["light", "backdrop", "web", "architecture", "chrome", "operator"]
STAGES: tuple[Stage, ...] = ("light", "backdrop", "web", "architecture", "chrome", "operator")


@dataclass(frozen=True)
class Kit:
    """What a layer is built from; every layer of a renderer shares them (one shader library,
    one painter with its text atlas, one look, the room it is shown in)."""

    shaders: ShaderLibrary
    painter: Painter
    look: LookSettings
    venue: VenueSettings = field(default_factory=VenueSettings)


@dataclass(frozen=True)
class Overlay:
    """What the layers show besides the scene (the model's state, the prompt, messages); built
    by the app every frame."""

    state: str  # the model's status: "starting" | "loading" | "ready" | "generating" | ...
    message: str  # status detail (the load stage)
    progress: float  # stages done, and the counted part of the current one, ÷ stages (0..1)
    model: str
    layers: int
    prompt: str  # the prompt of the answer on screen ("" before the first)
    typing: str | None  # the prompt being typed; None while the box is closed
    paused: bool
    recording: str | None  # the file being recorded
    hud: tuple[str, ...]  # empty when the HUD is off
    notices: tuple[str, ...]  # short-lived messages (screenshot saved, recording stopped …)
    errors: tuple[str, ...]  # shader compile errors, model failures
    architecture: Architecture | None = None  # the loaded model's, for the architecture scene
    scene_mix: float = 0.0  # 0: the neural web, 1: the architecture; between: crossfading
    interactive: bool = True  # someone can type here (not a video or poster): show the hint
    flash: float = 0.0  # the glitch's word flash: 1 as it starts, fading
    flash_word: str = ""
    split: float = 0.0  # the glitch's colour split, a share of the width
    replay: bool = False  # the answer on screen is an earlier one played again (kiosk attract)
    lens: bool = True  # the logit lens's words beside the layers (key L)
    paused_dropped: int = 0  # frames a pause could not hold (intake.PENDING_LIMIT are held)
    intervene: str = ""  # the interventions panel's text ("" when nothing is changed or chosen)
    blackout: float = 0.0  # 0..1: the picture faded to black over everything (B; blackout.py)


@dataclass(frozen=True)
class LayerInput:
    """This frame, as every layer sees it: each takes what it needs. What several layers need
    is computed here at most once a frame."""

    size: tuple[int, int]  # the output's pixels
    scene: SceneState
    overlay: Overlay
    camera: Camera
    time: float
    render_scale: float  # the 3D scene's resolution ÷ the output's (the governor's scale)
    detail: float  # 0..1: the governor's share of links and arcs to draw
    history: int  # tokens on the token path (the look's)

    @property
    def aspect(self) -> float:
        return self.size[0] / self.size[1]

    @cached_property
    def matrix(self) -> np.ndarray:
        """The camera's projection × view."""
        return self.camera.matrix(self.aspect)

    @cached_property
    def mvp(self) -> bytes:
        """`matrix`, column-major float32 (a GLSL mat4)."""
        return np.ascontiguousarray(self.matrix.T, dtype=np.float32).tobytes()

    @property
    def ages(self) -> tuple[float, ...]:
        """Seconds since each of the newest features.WAVES tokens arrived, newest first, padded
        with a long time ago (the shaders' `u_ages`)."""
        ages = self.scene.ages
        return (*(min(age, LONG_AGO) for age in ages), *(LONG_AGO,) * (WAVES - len(ages)))

    @property
    def depth(self) -> float:
        """The tower's axis's distance from the eye (clip w of the origin): where the web's
        atmospheric fade begins (shaders/lib/depth.glsl)."""
        return float(self.matrix[3, 3])

    @property
    def focal(self) -> tuple[float, float]:
        """The projection's x and y focal factors (sprite sizes)."""
        f = 1 / math.tan(math.radians(FOV_DEG) / 2)
        return f / self.aspect, f

    @cached_property
    def path(self) -> np.ndarray:
        """The token path's dots: the nodes draw them, the links join them."""
        return path_dots(self.scene, self.history)


def path_dots(scene: SceneState, history: int) -> np.ndarray:
    """[n, 5] instances (pos, level, hue) for the tokens on the path, oldest first. Prompt
    tokens are cold, generated ones warm; a dot brightens with the attention the newest token
    pays it, and the newest token is the brightest."""
    tokens = list(scene.tokens)[-(history + 2) :]
    if not tokens:
        return np.zeros((0, 5), np.float32)
    index = np.array([t.index for t in tokens], np.float32)
    slots = scene.head - index  # 0 = the newest, fractional while scrolling
    got = scene.attention_received()
    received = np.array([got.get(t.index, 0.0) for t in tokens], np.float32)
    level = 0.22 + 0.6 * np.sqrt(np.minimum(received / max(scene.rows - 1, 1) * 3, 1))
    level[-1] = 1.0
    fade = np.clip(history - slots, 0, 1)  # the oldest slide off the end of the path
    hue = np.array([0.0 if t.is_prompt else 0.9 for t in tokens], np.float32)
    pos = layout.path_positions(slots, history)
    return np.column_stack([pos, level * fade, hue]).astype(np.float32)


@runtime_checkable
class Layer(Protocol):
    """One visual. It is built as `Layer(kit)`, owns its programs, buffers and textures, and
    draws in its `stage`, onto the framebuffer bound there. Each frame the renderer calls
    `update` (CPU: prepare data, mark it dirty) then `draw` (GPU: upload, draw). Subclass it
    to inherit the no-op `update` and `release`."""

    stage: ClassVar[Stage]

    def update(self, frame: LayerInput) -> None:
        """Prepare this frame's data on the CPU (nothing to prepare by default)."""

    def draw(self, frame: LayerInput) -> None: ...

    def release(self) -> None:
        """Free what the layer made on the GPU (nothing by default: the shared kit is the
        renderer's)."""
