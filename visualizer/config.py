"""Settings as frozen msgspec Structs: defaults here < a TOML preset in configs/ < flags.

Every option has its one default and its bounds here, in its type (msgspec `Meta`: ranges,
lengths, a pattern with the words that say it); what a `Meta` cannot say (a gap in a range, a
check across keys, an intervention's spelling) is in `__post_init__` of its table, beside the
fields. Every value from outside (a preset, a flag, a client on the wire) is decoded through
these same types by msgspec: ints are taken where floats are meant, non-finite numbers fail
their bounds, and a refusal is one line naming the file (and line), the key and what it must be
(refusals.py).
"""

from pathlib import Path
from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta

from visualizer.errors import UserError
from visualizer.interventions import interventions_from
from visualizer.paths import data_dir
from visualizer.refusals import explain, line_of, read_toml

PRESET_DIR = data_dir("configs")


COLOURS = ("background", "cold", "warm", "hot", "text", "accent")
SCENES = ("web", "architecture")  # number keys 1, 2 in the window
X264_SPEEDS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow",
               "slower", "veryslow")  # fmt: skip
MIN_CONTEXT = 8  # the smallest view that can slide: it keeps its newest half less one token
MIN_TEMPERATURE = 0.01  # below this (but 0, greedy) logits ÷ T overflow float32 to inf


# what parse_keys takes: modifiers (in ASCII letters, any case), then one key that is neither
# "+" nor blank and stays one character in lower case ("İ" becomes two)
KEYS = r"^(?:\s*(?ai:ctrl|shift|alt)\s*\+)*\s*[^\s+\u0130]\s*\Z"


def parse_keys(text: str) -> tuple[frozenset[str], str] | None:
    """"ctrl+shift+q" → ({"ctrl", "shift"}, "q"); None if it is not modifiers and one key
    (a text that KEYS does not match)."""
    *mods, key = [part.strip().lower() for part in text.split("+")]
    if not key or not set(mods) <= {"ctrl", "shift", "alt"} or len(key) != 1:
        return None
    return frozenset(mods), key


def rgb(text: str) -> tuple[float, float, float]:
    """"#rrggbb" → linear-ish floats in 0..1 (shaders work in these)."""
    return tuple(int(text[i : i + 2], 16) / 255 for i in (1, 3, 5))


class ConfigError(UserError):
    """A preset or flag value is unknown or of the wrong type; `key` names it ("look.glow")."""

    def __init__(self, message: str, key: str | None = None) -> None:
        super().__init__(message)
        self.key = key


def _range(lo: float | None = None, hi: float | None = None, *, gt: float | None = None,
           kind: type = float) -> Any:  # fmt: skip
    """A number type with its bounds: what the preset, the flags and the wire all check."""
    return Annotated[kind, Meta(ge=lo, le=hi, gt=gt)]


Colour = Annotated[str, Meta(pattern=r"^#[0-9a-fA-F]{6}$", description='a colour "#rrggbb"')]
Path_ = Annotated[str, Meta(max_length=4096)]
Scene = Literal["web", "architecture"]


class _Settings(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A table of settings: frozen, unknown keys refused."""


class ModelSettings(_Settings):
    name: Path_ = ""  # "" = embedded SmolLM2-135M-Instruct; or a folder, .gguf, HF cache name
    trust_pickle: bool = False  # allow .bin/.pt weights, which can run code when loaded
    threads: _range(0, 4096, kind=int) = 0  # torch intra-op threads; 0 = one per core
    source: Path_ = ""  # HOST:PORT of a `neuroweb serve` to take frames from; "" = a local process
    token_file: Path_ = ""  # the shared token a server asks for (a file holding it)
    key_dir: Path_ = ""  # CURVE keys for a server beyond loopback (`neuroweb serve --keys`)
    detail: Literal["", "full", "reduced", "compact"] = ""  # what crosses per frame; "" = the
    #                                                         source's own default
    watch: bool = False  # with `source`: a viewer of the server's answers; asks for none


class GenerationSettings(_Settings):
    """How an answer is sampled; the same type is read from presets, flags and the wire."""

    max_tokens: _range(1, 1 << 20, kind=int) = 128  # generated tokens per prompt (the prompt's
    #                                                 own frames come on top)
    temperature: _range(0, 10) = 0.7  # 0 = greedy, reproducible; else at least MIN_TEMPERATURE
    top_k: _range(0, 1 << 20, kind=int) = 50  # 0 = off
    top_p: _range(gt=0, hi=1) = 0.95  # 1.0 = off
    seed: _range(0, 2**63 - 1, kind=int) = 0
    raw: bool = False  # True: feed the prompt as is, without the chat template
    context: _range(MIN_CONTEXT, 1 << 24, kind=int) = 1024  # tokens kept in view; past it the
    #                                                          oldest half slides out

    def __post_init__(self) -> None:
        if 0 < self.temperature < MIN_TEMPERATURE:
            raise ValueError(f"temperature must be 0 (greedy) or ≥ {MIN_TEMPERATURE}")


class CaptureSettings(_Settings):
    candidates: _range(10, 1000, kind=int) = 10  # top-k next-token candidates recorded per frame
    prefill_chunk: _range(1, 1 << 16, kind=int) = 64  # prompt positions per forward pass (bounds
    #                                                   attention memory)
    trace_window: _range(1, 1 << 16, kind=int) = 64  # attention a trace keeps per token: its
    #                                                  newest positions (and the sink)
    lens_every: _range(0, 1 << 16, kind=int) = 4  # the logit lens on every Nth layer (and the
    #                                               last); 0: no lens
    lens_candidates: _range(1, 20, kind=int) = 5  # the top words kept per lensed layer
    # the lens over the prompt: "last", only its last position (the one whose answer is the
    # first word; the others are shown at once and replaced within a frame, and lensing them
    # all doubled the wait for the first word); "all", every position (traces for analysis)
    lens_prompt: Literal["last", "all"] = "last"


class LookSettings(_Settings):
    """How the neural web looks: colours are "#rrggbb", sizes are relative to the scene."""

    background: Colour = "#04060d"  # the deepest colour of the animated background
    cold: Colour = "#2f7dff"  # a quiet node or link
    warm: Colour = "#ff5fa2"  # a node whose MLP (or the chosen hue source) is strongly active
    hot: Colour = "#fff4d6"  # the brightest nodes blend toward this
    text: Colour = "#f2f4ff"  # the answer, the candidates, the HUD
    accent: Colour = "#ffcc4d"  # the current token, the top candidate, attention arcs' tips
    nodes_per_layer: _range(1, 512, kind=int) = 48  # each layer's d dims are split into this
    #                                                 many contiguous groups
    link_fanout: _range(0, 8, kind=int) = 2  # links from each node to nodes of the next layer
    arcs_per_layer: _range(0, 16, kind=int) = 3  # attention arcs per layer: its most attended
    #                                              earlier tokens
    history: _range(2, 256, kind=int) = 40  # tokens shown on the token path
    brightness: Literal["hidden", "mlp"] = "hidden"  # what node brightness follows: "hidden"
    #                                                  (residual) | "mlp"
    hue: Literal["mlp", "hidden", "layer"] = "mlp"  # what shifts node colour cold→warm
    node_size: _range(gt=0, hi=10) = 1.0
    glow: _range(0, 5) = 0.9  # bloom strength
    ease_s: _range(gt=0, hi=5) = 0.09  # time constant with which every quantity eases to the
    #                                    newest token
    pulse_s: _range(gt=0, hi=5) = 0.35  # how long a new token's pulse takes to fade
    drift_deg_s: _range(-360, 360) = 4.0  # the camera's slow orbit when nobody drags it
    text_size: _range(0.01, 0.2) = 0.05  # answer text height as a fraction of the window height
    scene: Scene = "web"  # the scene shown first: "web" (the neural web) | "architecture"
    glitch: _range(0, 1) = 0.0  # 0..1: jump cuts, stutters, word flashes, colour splits on tokens
    lens: bool = True  # the logit lens's words beside the layers (key L)
    safe_area: bool = False  # the 5 % graphics-safe area's frame over every scene, for lining
    #                          up a projector (render/layers/safe_area.py); not for an audience


class WindowSettings(_Settings):
    width: _range(16, 16384, kind=int) = 1280
    height: _range(16, 16384, kind=int) = 720
    fullscreen: bool = False
    vsync: bool = True
    target_fps: _range(1, 240, kind=int) = 60  # the governor lowers render scale and detail to
    #                                            hold this
    software_fps: _range(1, 240, kind=int) = 60  # the frame-rate cap when OpenGL runs on the CPU
    #                         (Mesa llvmpipe): no vsync paces it there; no frame a 60 Hz display
    #                         cannot show
    min_scale: _range(0.1, 1) = 0.3  # the lowest internal render scale the governor may use
    max_scale: _range(0.1, 1) = 1.0
    display: _range(0, 64, kind=int) = 0  # the screen the window opens on (the projector's)
    operator: bool = False  # the operator's window beside it, on the laptop's screen when there
    #                         are two (render/operator_view.py); the window itself is then clean

    def __post_init__(self) -> None:
        if self.min_scale > self.max_scale:
            raise ValueError("min_scale must be ≤ max_scale")


class RecordSettings(_Settings):
    fps: _range(1, 240, kind=int) = 30  # frames per second of video (live recordings resample
    #                                     the display's rate)
    crf: _range(0, 51, kind=int) = 20  # H.264 quality: lower is better and larger
    speed: Literal[X264_SPEEDS] = "ultrafast"  # x264 preset: measured on a 720p30 render in
    # parts against superfast and veryfast: 1.12x and 1.29x the frames a second, PSNR 48.4
    # against 45.4 and 43.0 dB at crf 20, files 1.33x and 2.2x as large (docs/performance.md)
    pix_fmt: Literal["yuv420p", "yuv420p10le"] = "yuv420p"  # H.264's samples: 8 bits, or 10
    # (High 10: dark gradients without bands, for editors and players that decode it)
    demo_frames: _range(1, 1 << 24, kind=int) = 360  # length of the clip rendered when no
    #                                                  display is available
    demo_prompt: Annotated[str, Meta(min_length=1, max_length=65536)] = (
        "In three sentences, what does a lighthouse keeper do at night?")
    # the window live as MPEG-TS there (for OBS), from its start; "" = none
    stream: Annotated[str, Meta(pattern=r"^((udp|srt)://[^/?]+:[0-9]{1,5}([?].*)?)?$",
                                max_length=1024,
                                description="udp://HOST:PORT or srt://HOST:PORT")] = ""
    poster_width: _range(16, 16384, kind=int) = 3840  # the S key's and `neuroweb snapshot`'s
    poster_height: _range(16, 16384, kind=int) = 2160


Level = _range(0, 1)


class SoundSettings(_Settings):
    """The soundtrack synthesised from the frames (docs/sound.md); levels are 0..1."""

    enabled: bool = True  # the live window's speakers and the soundtrack of recordings
    volume: Level = 0.8  # master level before the soft limiter
    drone: Level = 1.0  # one voice per band of layers: loudness = what they write, timbre = MLP
    plucks: Level = 1.0  # a note per generated token, chosen by its id
    breath: Level = 1.0  # noise that follows the entropy
    bells: Level = 1.0  # an FM bell when the model did not take its first choice
    echo: _range(0, 0.9) = 0.35  # ping-pong echo: feedback and wet level
    device: Annotated[str, Meta(max_length=256)] = ""  # the output's name (`neuroweb run
    #                                            --audio-device list`); "" = the system's own


Prompt = Annotated[str, Meta(pattern=r"\S", description="a text that is not blank"),
                   Meta(max_length=65536)]  # fmt: skip
ExitKeys = Annotated[str, Meta(pattern=KEYS,
                               description='modifiers and a key, like "ctrl+shift+q"')]  # fmt: skip


class KioskSettings(_Settings):
    """`neuroweb kiosk`: an installation that runs unattended for days."""

    prompts: Annotated[tuple[Prompt, ...], Meta(min_length=1, max_length=10_000)] = (
        "What does the sea remember?",
        "Describe a lighthouse to someone who has never seen one.",
        "Write a short poem about thinking.",
        "Explain how a language model chooses its next word.",
        "Tell a two-sentence story about a clockmaker.",
    )
    shuffle: bool = True  # a fresh order every round (seeded by generation.seed)
    tokens: _range(1, 1 << 20, kind=int) = 96  # per answer
    pause_s: _range(0, 86400) = 8.0  # a finished answer stays this long before the next prompt
    scenes: Annotated[tuple[Scene, ...], Meta(min_length=1, max_length=64)] = (
        "web", "architecture")  # shown in turn, crossfading
    scene_s: _range(gt=0, hi=86400) = 60.0  # how long each scene stays
    presets: Annotated[tuple[Path_, ...], Meta(max_length=64)] = ()  # looks to rotate with the
    #                                                                  scenes; empty: keep this one
    exit_keys: ExitKeys = "ctrl+shift+q"  # the only way out besides a signal
    display: _range(0, 64, kind=int) = 0  # which screen, when there are several
    stall_s: _range(gt=0, hi=86400) = 30.0  # no new token this long, answering or asked: restart
    log_file: Path_ = "neuroweb-kiosk.log"
    attract_file: Path_ = "neuroweb-attract.npz"  # an answer to replay while loading; "": none
    log_bytes: _range(10_000, 1 << 40, kind=int) = 1_000_000  # per file; three old files kept
    frozen_s: _range(5, 86400) = 20.0  # a render loop stuck this long ends the process


class InterveneSettings(_Settings):
    """What a run changes in the model (visualizer/interventions.py spells them)."""

    ablate: Annotated[tuple[Path_, ...], Meta(max_length=64)] = ()  # "mlp:10", "attn:3",
    #                                             "head:3.7": zeroed from the first token
    steer: Annotated[tuple[Path_, ...], Meta(max_length=8)] = ()  # "8:2:I love you|I hate you":
    #                                                     block, scale, two contrast prompts
    ghost: bool = True  # while something is changed, the untouched run answers beside it

    def __post_init__(self) -> None:
        try:
            interventions_from(self.ablate, self.steer, "intervene.")
        except UserError as exc:
            raise ValueError(str(exc).removeprefix("intervene.")) from None


ScreenHeights = _range(gt=0, hi=100)


class VenueSettings(_Settings):
    """The room the picture is shown in, its distances in screen heights (a 1 m tall picture
    seen from 6 m: 6). The smallest text is sized from the farthest viewer: farthest ÷ 200 of
    the frame height (the AV industry's rule); smaller labels, a reward for a close look, are
    left out where they would be smaller than that. The default is a desk's monitor."""

    farthest_viewer: ScreenHeights = 2.0  # the back row: desk 2, gallery 4, a talk's hall 6
    nearest_viewer: ScreenHeights = 1.0  # the front row: desk 1, gallery 1, a talk 1.5
    projector: bool = False  # shown by a projector (a washed-out black, a lit room)
    directed_camera: bool = False  # nobody at the mouse: the camera moves in close to what
    #                                the model does by itself (render/direction.py)

    def __post_init__(self) -> None:
        if self.nearest_viewer > self.farthest_viewer:
            raise ValueError("nearest_viewer must be ≤ farthest_viewer")


class SafetySettings(_Settings):
    flash_limit: bool = True  # hold flashes to WCAG 2.3.1's three a second in all output


class ServeSettings(_Settings):
    """`neuroweb serve`: what one client may take of a model shared by many."""

    max_tokens: _range(1, 1 << 20, kind=int) = 1024  # per answer, whatever a client asks
    max_answer_s: _range(gt=0, hi=86400) = 120.0  # an answer running longer is stopped
    heap_log_s: _range(0, 86400) = 0.0  # log the C heap's use this often (from the start, for
    #                                     a soak's diagnosis); 0 = never


class Settings(_Settings):
    model: ModelSettings = msgspec.field(default_factory=ModelSettings)
    generation: GenerationSettings = msgspec.field(default_factory=GenerationSettings)
    capture: CaptureSettings = msgspec.field(default_factory=CaptureSettings)
    look: LookSettings = msgspec.field(default_factory=LookSettings)
    window: WindowSettings = msgspec.field(default_factory=WindowSettings)
    record: RecordSettings = msgspec.field(default_factory=RecordSettings)
    sound: SoundSettings = msgspec.field(default_factory=SoundSettings)
    safety: SafetySettings = msgspec.field(default_factory=SafetySettings)
    venue: VenueSettings = msgspec.field(default_factory=VenueSettings)
    kiosk: KioskSettings = msgspec.field(default_factory=KioskSettings)
    intervene: InterveneSettings = msgspec.field(default_factory=InterveneSettings)
    serve: ServeSettings = msgspec.field(default_factory=ServeSettings)


def decode_settings(data: Any, kind: type, where: str) -> Any:
    """`data` (plain values: TOML's, the flags', a message's) as a `kind` Struct, through its
    bounds; ConfigError naming `where`, the key and what it must be."""
    try:
        return msgspec.convert(data, kind)
    except msgspec.ValidationError as exc:
        message, key = explain(exc, data, kind)
        raise ConfigError(f"{where}: {message}", key) from None


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
        available = ", ".join(sorted(p.stem for p in PRESET_DIR.glob("*.toml")))
        text, data = read_toml(path, f"no such preset (available: {available})", ConfigError)
        try:
            settings = _over(settings, data, str(path))
        except ConfigError as exc:
            line = line_of(text, exc.key) if exc.key else None
            if line is None:
                raise
            raise ConfigError(str(exc).replace(f"{path}:", f"{path}:{line}:", 1), exc.key) from None
    if overrides:
        settings = _over(settings, overrides, "command line")
    return settings


def _over(settings: Settings, data: dict, where: str) -> Settings:
    """`settings` with `data`'s keys laid over them, all decoded again through the bounds."""
    return decode_settings(_deep_merge(msgspec.to_builtins(settings), data), Settings, where)


def _deep_merge(base: dict, top: Any) -> Any:
    if not isinstance(top, dict) or not isinstance(base, dict):
        return top
    return {**base, **{k: _deep_merge(base.get(k), v) for k, v in top.items()}}


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
