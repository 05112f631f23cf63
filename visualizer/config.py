"""Settings as frozen dataclasses: defaults here < a TOML preset in configs/ < command-line flags.

Every option has its one default in these dataclasses; presets and flags only override.
An unknown or ill-typed key raises ConfigError naming the file, the key and what is expected.
"""

import dataclasses
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from visualizer.errors import UserError
from visualizer.interventions import interventions_from
from visualizer.paths import data_dir

PRESET_DIR = data_dir("configs")


COLOURS = ("background", "cold", "warm", "hot", "text", "accent")
SCENES = ("web", "architecture")  # number keys 1, 2 in the window
X264_SPEEDS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow",
               "slower", "veryslow")  # fmt: skip


def parse_keys(text: str) -> tuple[frozenset[str], str] | None:
    """"ctrl+shift+q" → ({"ctrl", "shift"}, "q"); None if it is not modifiers and one key."""
    *mods, key = [part.strip().lower() for part in text.split("+")]
    if not key or not set(mods) <= {"ctrl", "shift", "alt"} or len(key) != 1:
        return None
    return frozenset(mods), key


def is_colour(text: str) -> bool:
    digits = "0123456789abcdefABCDEF"
    return len(text) == 7 and text[0] == "#" and all(c in digits for c in text[1:])


def rgb(text: str) -> tuple[float, float, float]:
    """"#rrggbb" → linear-ish floats in 0..1 (shaders work in these)."""
    return tuple(int(text[i : i + 2], 16) / 255 for i in (1, 3, 5))


class ConfigError(UserError):
    """A preset or flag value is unknown or of the wrong type; `key` names it ("look.glow")."""

    def __init__(self, message: str, key: str | None = None) -> None:
        super().__init__(message)
        self.key = key


@dataclass(frozen=True)
class ModelSettings:
    name: str = ""  # "" = embedded SmolLM2-135M-Instruct; or a folder, .gguf, HF cache name
    trust_pickle: bool = False  # allow .bin/.pt weights, which can run code when loaded
    threads: int = 0  # torch intra-op threads in the model process; 0 = one per core
    source: str = ""  # HOST:PORT of a `neuroweb serve` to take frames from; "" = a local process
    token_file: str = ""  # the shared token a server asks for (a file holding it)
    detail: str = ""  # what crosses per frame: "full" | "reduced" | "compact"; "" = the source's


@dataclass(frozen=True)
class GenerationSettings:
    max_tokens: int = 128  # generated tokens per prompt (the prompt's own frames come on top)
    temperature: float = 0.7  # 0 = greedy, reproducible
    top_k: int = 50  # 0 = off
    top_p: float = 0.95  # 1.0 = off
    seed: int = 0
    raw: bool = False  # True: feed the prompt as is, without the chat template
    context: int = 1024  # tokens kept in view; past it the oldest half slides out


@dataclass(frozen=True)
class CaptureSettings:
    candidates: int = 10  # top-k next-token candidates recorded per frame
    prefill_chunk: int = 64  # prompt positions per forward pass (bounds attention memory)
    trace_window: int = 64  # attention a trace keeps per token: its newest positions (and the sink)
    lens_every: int = 4  # the logit lens on every Nth layer (and the last); 0: no lens
    lens_candidates: int = 5  # the top words kept per lensed layer
    # the lens over the prompt: "last", only its last position (the one whose answer is the
    # first word; the others are shown at once and replaced within a frame, and lensing them
    # all doubled the wait for the first word); "all", every position (traces for analysis)
    lens_prompt: str = "last"


@dataclass(frozen=True)
class LookSettings:
    """How the neural web looks: colours are "#rrggbb", sizes are relative to the scene."""

    background: str = "#04060d"  # the deepest colour of the animated background
    cold: str = "#2f7dff"  # a quiet node or link
    warm: str = "#ff5fa2"  # a node whose MLP (or the chosen hue source) is strongly active
    hot: str = "#fff4d6"  # the brightest nodes blend toward this
    text: str = "#f2f4ff"  # the answer, the candidates, the HUD
    accent: str = "#ffcc4d"  # the current token, the top candidate, attention arcs' tips
    nodes_per_layer: int = 48  # each layer's d dims are split into this many contiguous groups
    link_fanout: int = 2  # links from each node to nodes of the next layer
    arcs_per_layer: int = 3  # attention arcs per layer: its most attended earlier tokens
    history: int = 40  # tokens shown on the token path
    brightness: str = "hidden"  # what node brightness follows: "hidden" (residual) | "mlp"
    hue: str = "mlp"  # what shifts node colour cold→warm: "mlp" | "hidden" | "layer"
    node_size: float = 1.0
    glow: float = 0.9  # bloom strength
    ease_s: float = 0.09  # time constant with which every quantity eases to the newest token
    pulse_s: float = 0.35  # how long a new token's pulse takes to fade
    drift_deg_s: float = 4.0  # the camera's slow orbit when nobody drags it
    text_size: float = 0.05  # answer text height as a fraction of the window height
    scene: str = "web"  # the scene shown first: "web" (the neural web) | "architecture"
    glitch: float = 0.0  # 0..1: jump cuts, stutters, word flashes, colour splits on tokens
    lens: bool = True  # the logit lens's words beside the layers (key L)


@dataclass(frozen=True)
class WindowSettings:
    width: int = 1280
    height: int = 720
    fullscreen: bool = False
    vsync: bool = True
    target_fps: int = 60  # the governor lowers render scale and detail to hold this
    software_fps: int = 60  # the frame-rate cap when OpenGL runs on the CPU (Mesa llvmpipe):
    #                         no vsync paces it there; no frame a 60 Hz display cannot show
    min_scale: float = 0.3  # the lowest internal render scale the governor may use
    max_scale: float = 1.0


@dataclass(frozen=True)
class RecordSettings:
    fps: int = 30  # frames per second of video (live recordings resample the display's rate)
    crf: int = 20  # H.264 quality: lower is better and larger
    speed: str = "ultrafast"  # x264 preset: measured on a 720p30 render in parts against
    # superfast and veryfast: 1.12x and 1.29x the frames a second, PSNR 48.4 against 45.4 and
    # 43.0 dB at crf 20, files 1.33x and 2.2x as large (README: Recording)
    demo_frames: int = 360  # length of the clip rendered when no display is available
    demo_prompt: str = "In three sentences, what does a lighthouse keeper do at night?"
    poster_width: int = 3840  # the S key's and `neuroweb snapshot`'s image
    poster_height: int = 2160


@dataclass(frozen=True)
class SoundSettings:
    """The soundtrack synthesised from the frames (README: "The sound"); levels are 0..1."""

    enabled: bool = True  # the live window's speakers and the soundtrack of recordings
    volume: float = 0.8  # master level before the soft limiter
    drone: float = 1.0  # one voice per band of layers: loudness = what they write, timbre = MLP
    plucks: float = 1.0  # a note per generated token, chosen by its id
    breath: float = 1.0  # noise that follows the entropy
    bells: float = 1.0  # an FM bell when the model did not take its first choice
    echo: float = 0.35  # ping-pong echo: feedback and wet level


@dataclass(frozen=True)
class KioskSettings:
    """`neuroweb kiosk`: an installation that runs unattended for days."""

    prompts: tuple[str, ...] = (
        "What does the sea remember?",
        "Describe a lighthouse to someone who has never seen one.",
        "Write a short poem about thinking.",
        "Explain how a language model chooses its next word.",
        "Tell a two-sentence story about a clockmaker.",
    )
    shuffle: bool = True  # a fresh order every round (seeded by generation.seed)
    tokens: int = 96  # per answer
    pause_s: float = 8.0  # a finished answer stays this long before the next prompt
    scenes: tuple[str, ...] = ("web", "architecture")  # shown in turn, crossfading
    scene_s: float = 60.0  # how long each scene stays
    presets: tuple[str, ...] = ()  # looks to rotate with the scenes; empty: keep this one
    exit_keys: str = "ctrl+shift+q"  # the only way out besides a signal
    display: int = 0  # which screen, when there are several
    stall_s: float = 30.0  # an answer with no new token this long: restart the model
    log_file: str = "neuroweb-kiosk.log"
    attract_file: str = "neuroweb-attract.npz"  # an answer to replay while loading; "": none
    log_bytes: int = 1_000_000  # per file; three old files are kept
    frozen_s: float = 20.0  # a render loop stuck this long ends the process (restart it)


@dataclass(frozen=True)
class InterveneSettings:
    """What a run changes in the model (visualizer/interventions.py spells them)."""

    ablate: tuple[str, ...] = ()  # "mlp:10", "attn:3", "head:3.7": zeroed from the first token
    steer: tuple[str, ...] = ()  # "8:2:I love you|I hate you": block, scale, two contrast prompts
    ghost: bool = True  # while something is changed, the untouched run answers beside it


@dataclass(frozen=True)
class SafetySettings:
    flash_limit: bool = True  # hold flashes to WCAG 2.3.1's three a second in all output


@dataclass(frozen=True)
class Settings:
    model: ModelSettings = field(default_factory=ModelSettings)
    generation: GenerationSettings = field(default_factory=GenerationSettings)
    capture: CaptureSettings = field(default_factory=CaptureSettings)
    look: LookSettings = field(default_factory=LookSettings)
    window: WindowSettings = field(default_factory=WindowSettings)
    record: RecordSettings = field(default_factory=RecordSettings)
    sound: SoundSettings = field(default_factory=SoundSettings)
    safety: SafetySettings = field(default_factory=SafetySettings)
    kiosk: KioskSettings = field(default_factory=KioskSettings)
    intervene: InterveneSettings = field(default_factory=InterveneSettings)

    def validate(self, where: str) -> "Settings":
        """Check ranges; `where` names the source for the error message."""
        g, c, m, lk, w, r, s, k = (
            self.generation, self.capture, self.model, self.look, self.window, self.record,
            self.sound, self.kiosk,
        )
        checks = [
            (g.max_tokens >= 1, "generation.max_tokens", "an integer ≥ 1"),
            (g.temperature >= 0, "generation.temperature", "a number ≥ 0"),
            (g.top_k >= 0, "generation.top_k", "an integer ≥ 0"),
            (0 < g.top_p <= 1, "generation.top_p", "a number in (0, 1]"),
            (g.context >= 8, "generation.context", "an integer ≥ 8"),
            (c.candidates >= 10, "capture.candidates", "an integer ≥ 10"),
            (c.prefill_chunk >= 1, "capture.prefill_chunk", "an integer ≥ 1"),
            (c.lens_every >= 0, "capture.lens_every", "an integer ≥ 0"),
            (1 <= c.lens_candidates <= 20, "capture.lens_candidates", "an integer in 1..20"),
            (c.lens_prompt in ("last", "all"), "capture.lens_prompt", '"last" | "all"'),
            (m.threads >= 0, "model.threads", "an integer ≥ 0"),
            *((is_colour(getattr(lk, k)), f"look.{k}", 'a colour "#rrggbb"') for k in COLOURS),
            (1 <= lk.nodes_per_layer <= 512, "look.nodes_per_layer", "an integer in 1..512"),
            (0 <= lk.link_fanout <= 8, "look.link_fanout", "an integer in 0..8"),
            (0 <= lk.arcs_per_layer <= 16, "look.arcs_per_layer", "an integer in 0..16"),
            (2 <= lk.history <= 256, "look.history", "an integer in 2..256"),
            (lk.brightness in ("hidden", "mlp"), "look.brightness", '"hidden" or "mlp"'),
            (lk.hue in ("mlp", "hidden", "layer"), "look.hue", '"mlp", "hidden" or "layer"'),
            (0 < lk.node_size <= 10, "look.node_size", "a number in (0, 10]"),
            (0 <= lk.glow <= 5, "look.glow", "a number in [0, 5]"),
            (0 < lk.ease_s <= 5, "look.ease_s", "a number in (0, 5]"),
            (0 < lk.pulse_s <= 5, "look.pulse_s", "a number in (0, 5]"),
            (0.01 <= lk.text_size <= 0.2, "look.text_size", "a number in [0.01, 0.2]"),
            (0 <= lk.glitch <= 1, "look.glitch", "a number in [0, 1]"),
            (lk.scene in SCENES, "look.scene", " | ".join(f'"{s}"' for s in SCENES)),
            (16 <= w.width <= 16384, "window.width", "an integer in 16..16384"),
            (16 <= w.height <= 16384, "window.height", "an integer in 16..16384"),
            (1 <= w.target_fps <= 240, "window.target_fps", "an integer in 1..240"),
            (1 <= w.software_fps <= 240, "window.software_fps", "an integer in 1..240"),
            (0.1 <= w.min_scale <= w.max_scale <= 1, "window.min_scale",
             "≤ window.max_scale, both in [0.1, 1]"),
            (1 <= r.fps <= 240, "record.fps", "an integer in 1..240"),
            (0 <= r.crf <= 51, "record.crf", "an integer in 0..51"),
            (r.speed in X264_SPEEDS, "record.speed", " | ".join(X264_SPEEDS)),
            (r.demo_frames >= 1, "record.demo_frames", "an integer ≥ 1"),
            (16 <= r.poster_width <= 16384, "record.poster_width", "an integer in 16..16384"),
            (16 <= r.poster_height <= 16384, "record.poster_height", "an integer in 16..16384"),
            *((0 <= getattr(s, k) <= 1, f"sound.{k}", "a number in [0, 1]")
              for k in ("volume", "drone", "plucks", "breath", "bells")),
            (0 <= s.echo <= 0.9, "sound.echo", "a number in [0, 0.9]"),
            (len(k.prompts) > 0 and all(p.strip() for p in k.prompts), "kiosk.prompts",
             "a list of prompts, none empty"),
            (k.tokens >= 1, "kiosk.tokens", "an integer ≥ 1"),
            (k.pause_s >= 0, "kiosk.pause_s", "a number ≥ 0"),
            (len(k.scenes) > 0 and all(x in SCENES for x in k.scenes), "kiosk.scenes",
             "a list of " + " | ".join(SCENES)),
            (k.scene_s > 0, "kiosk.scene_s", "a number > 0"),
            (parse_keys(k.exit_keys) is not None, "kiosk.exit_keys",
             'modifiers and a key, like "ctrl+shift+q"'),
            (k.display >= 0, "kiosk.display", "an integer ≥ 0"),
            (k.stall_s > 0, "kiosk.stall_s", "a number > 0"),
            (k.log_bytes >= 10_000, "kiosk.log_bytes", "an integer ≥ 10000"),
            (k.frozen_s >= 5, "kiosk.frozen_s", "a number ≥ 5"),
        ]
        for ok, key, expected in checks:
            if not ok:
                raise ConfigError(f"{where}: {key} must be {expected}", key)
        try:
            interventions_from(self.intervene.ablate, self.intervene.steer, "intervene.")
        except UserError as exc:
            raise ConfigError(f"{where}: {exc}", "intervene") from None
        return self


def _check_type(value: Any, hint: Any, where: str, key: str) -> Any:
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if isinstance(hint, type) and type(value) is hint:
        return value
    if hint == tuple[str, ...] and isinstance(value, list) and all(type(v) is str for v in value):
        return tuple(value)
    name = hint.__name__ if isinstance(hint, type) else "a list of strings"
    raise ConfigError(f"{where}: {key} must be {name}, got {value!r}", key)


def _merge(obj: Any, data: dict, where: str, prefix: str = "") -> Any:
    """Return `obj` with the keys of `data` replaced, checking names and types."""
    hints = typing.get_type_hints(type(obj))
    changes = {}
    for key, value in data.items():
        full = f"{prefix}{key}"
        if key not in hints:
            known = ", ".join(sorted(hints))
            raise ConfigError(f"{where}: unknown key '{full}' (known here: {known})", full)
        hint = hints[key]
        if dataclasses.is_dataclass(hint):
            if not isinstance(value, dict):
                raise ConfigError(f"{where}: '{full}' must be a table [{full}]", full)
            changes[key] = _merge(getattr(obj, key), value, where, f"{full}.")
        elif isinstance(hint, types.UnionType):
            raise AssertionError(f"settings field {full} must have one type")
        else:
            changes[key] = _check_type(value, hint, where, full)
    return dataclasses.replace(obj, **changes)


def _line_of(text: str, key: str) -> int | None:
    """The line (from 1) where dotted `key` ("look.glow") is set in TOML `text`, or its table
    starts ("look"); None if it cannot be found (an inline table, say)."""
    *tables, leaf = key.split(".")
    table, found = "", None
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if stripped.startswith("[") and stripped.endswith("]"):
            table = stripped.strip("[] ")
            if table == key:
                found = found or number
        elif table == ".".join(tables) and stripped.split("=")[0].strip() == leaf:
            return number
    return found


def preset_path(name_or_path: str) -> Path:
    """A preset name in configs/ ("default") or a path to a .toml file."""
    path = Path(name_or_path).expanduser()
    if path.suffix == ".toml" or path.exists():
        return path
    return PRESET_DIR / f"{name_or_path}.toml"


def load_settings(preset: str | None = None, overrides: dict | None = None) -> Settings:
    """Defaults < preset file < overrides (a nested dict from command-line flags)."""
    settings = Settings()
    if preset is not None:
        path = preset_path(preset)
        try:
            text = path.read_text(encoding="utf-8")
            data = tomllib.loads(text)
        except FileNotFoundError:
            available = ", ".join(sorted(p.stem for p in PRESET_DIR.glob("*.toml")))
            raise ConfigError(f"{path}: no such preset (available: {available})") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{path}: cannot read: {exc}") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: not valid TOML: {exc}") from None
        try:
            settings = _merge(settings, data, str(path)).validate(str(path))
        except ConfigError as exc:
            line = _line_of(text, exc.key) if exc.key else None
            if line is None:
                raise
            raise ConfigError(str(exc).replace(f"{path}:", f"{path}:{line}:", 1), exc.key) from None
    if overrides:
        settings = _merge(settings, overrides, "command line").validate("command line")
    return settings


class PresetWatch:
    """A preset to load again whenever its file changes: in the live window, presets are as
    live as shaders. `changed()` gives the new settings (flags still win over the file), None
    while the file is as it was, and raises ConfigError for a bad edit (reported once)."""

    def __init__(self, name: str, overrides: dict | None = None) -> None:
        self.name, self.overrides = name, overrides or {}
        self.path = preset_path(name)
        self._stamp = self._mtime()

    def _mtime(self) -> float:
        try:
            return self.path.stat().st_mtime
        except OSError:
            return 0.0

    def changed(self) -> Settings | None:
        stamp = self._mtime()
        if stamp == self._stamp:
            return None
        self._stamp = stamp
        return load_settings(self.name, self.overrides)
