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
from visualizer.paths import data_dir

PRESET_DIR = data_dir("configs")


class ConfigError(UserError):
    """A preset or flag value is unknown or of the wrong type."""


@dataclass(frozen=True)
class ModelSettings:
    name: str = ""  # "" = embedded SmolLM2-135M-Instruct; or a folder, .gguf, HF cache name
    trust_pickle: bool = False  # allow .bin/.pt weights, which can run code when loaded
    threads: int = 0  # torch intra-op threads in the model process; 0 = one per core


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


@dataclass(frozen=True)
class Settings:
    model: ModelSettings = field(default_factory=ModelSettings)
    generation: GenerationSettings = field(default_factory=GenerationSettings)
    capture: CaptureSettings = field(default_factory=CaptureSettings)

    def validate(self, where: str) -> "Settings":
        """Check ranges; `where` names the source for the error message."""
        g, c, m = self.generation, self.capture, self.model
        checks = [
            (g.max_tokens >= 1, "generation.max_tokens", "an integer ≥ 1"),
            (g.temperature >= 0, "generation.temperature", "a number ≥ 0"),
            (g.top_k >= 0, "generation.top_k", "an integer ≥ 0"),
            (0 < g.top_p <= 1, "generation.top_p", "a number in (0, 1]"),
            (g.context >= 8, "generation.context", "an integer ≥ 8"),
            (c.candidates >= 10, "capture.candidates", "an integer ≥ 10"),
            (c.prefill_chunk >= 1, "capture.prefill_chunk", "an integer ≥ 1"),
            (m.threads >= 0, "model.threads", "an integer ≥ 0"),
        ]
        for ok, key, expected in checks:
            if not ok:
                raise ConfigError(f"{where}: {key} must be {expected}")
        return self


def _check_type(value: Any, hint: Any, where: str, key: str) -> Any:
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if isinstance(hint, type) and type(value) is hint:
        return value
    name = hint.__name__ if isinstance(hint, type) else str(hint)
    raise ConfigError(f"{where}: {key} must be {name}, got {value!r}")


def _merge(obj: Any, data: dict, where: str, prefix: str = "") -> Any:
    """Return `obj` with the keys of `data` replaced, checking names and types."""
    hints = typing.get_type_hints(type(obj))
    changes = {}
    for key, value in data.items():
        full = f"{prefix}{key}"
        if key not in hints:
            known = ", ".join(sorted(hints))
            raise ConfigError(f"{where}: unknown key '{full}' (known here: {known})")
        hint = hints[key]
        if dataclasses.is_dataclass(hint):
            if not isinstance(value, dict):
                raise ConfigError(f"{where}: '{full}' must be a table [{full}]")
            changes[key] = _merge(getattr(obj, key), value, where, f"{full}.")
        elif isinstance(hint, types.UnionType):
            raise AssertionError(f"settings field {full} must have one type")
        else:
            changes[key] = _check_type(value, hint, where, full)
    return dataclasses.replace(obj, **changes)


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
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            available = ", ".join(sorted(p.stem for p in PRESET_DIR.glob("*.toml")))
            raise ConfigError(f"{path}: no such preset (available: {available})") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{path}: cannot read: {exc}") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: not valid TOML: {exc}") from None
        settings = _merge(settings, data, str(path)).validate(str(path))
    if overrides:
        settings = _merge(settings, overrides, "command line").validate("command line")
    return settings
