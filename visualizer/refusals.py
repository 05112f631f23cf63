"""A msgspec refusal as one line in our words: the key it concerns and what that key must be.

msgspec says what failed in its own terms (a regex, `Object contains unknown field`). The
words a user reads come from the field itself where it has them: the values of a `Literal`,
the `description` beside a `pattern` in its `Meta`. Settings (config.py) and wire messages
(wire/) are refused through this one function, so a bad value reads the same in a preset, on
the command line and from a client.
"""

import re
import tomllib
import typing
from pathlib import Path
from types import NoneType, UnionType
from typing import Annotated, Any, Literal

import msgspec

from visualizer.errors import UserError

_AT = re.compile(r"^(?P<what>.*?)(?: - at `\$(?P<path>[^`]*)`)?$", re.S)
_MISSING = object()


def read_toml(path: Path, missing: str, error: type[UserError] = UserError) -> tuple[str, dict]:
    """A TOML file's text (for the lines of its keys) and values; a file that is missing
    (`missing` says what instead), unreadable or not TOML is one line naming it (`error`)."""
    try:
        text = path.read_text(encoding="utf-8")
        return text, tomllib.loads(text)
    except FileNotFoundError:
        raise error(f"{path}: {missing}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise error(f"{path}: cannot read: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise error(f"{path}: not valid TOML: {exc}") from None


def explain(exc: msgspec.ValidationError, data: Any = None, root: Any = None
            ) -> tuple[str, str]:  # fmt: skip
    """`exc` as one line, and the dotted key it concerns ("look.glow"). `data`: the plain values
    decoded, to show the one refused; `root`: the type decoded, for the field's own words."""
    match = _AT.match(str(exc))
    what, path = match["what"], (match["path"] or "").lstrip(".")
    key = re.sub(r"\[\d+\]$", "", path)
    got = _at(data, path)
    shown = f", got {got!r}" if got is not _MISSING else ""
    unknown = re.match(r"Object contains unknown field `(.*)`", what)
    if unknown:
        full = f"{key}.{unknown[1]}" if key else unknown[1]
        return f"unknown key '{full}'", full
    missing = re.match(r"Object missing required field `(.*)`", what)
    if missing:
        full = f"{key}.{missing[1]}" if key else missing[1]
        return f"'{full}' is missing", full
    if what.startswith("Expected `object`"):
        return f"'{key}' must be a table [{key}]", key
    field = _field(root, path)
    if what.startswith("Invalid enum value"):
        choices = " | ".join(f'"{v}"' for v in _choices(field)) or "the allowed values"
        return f"{path} must be one of {choices}{shown}", key
    if what.startswith("Expected "):
        expected = re.sub(r", got `\w+`$", "", what.removeprefix("Expected ")).replace("`", "")
        if what.startswith("Expected `str` matching regex"):
            expected = _pattern_described(field) or expected
        return f"{path} must be {expected}{shown}", key
    # a check across keys (__post_init__): its message starts with the key it concerns
    leaf = what.split(" ", 1)[0]
    full = f"{key}.{leaf}" if key else leaf
    return f"{key}.{what}" if key else what, full


def _at(data: Any, path: str) -> Any:
    """The value at a msgspec path ("look.glow", "kiosk.prompts[1]") in plain data."""
    value = data
    for part in re.findall(r"[^.\[\]]+|\[\d+\]", path):
        try:
            value = value[int(part[1:-1])] if part.startswith("[") else value[part]
        except (KeyError, IndexError, TypeError, ValueError):
            return _MISSING
    return value


def _field(root: Any, path: str) -> Any:
    """The annotation at a msgspec path of the Struct type `root`; None where there is none."""
    kind = root
    for part in re.findall(r"[^.\[\]]+|\[\d+\]", path):
        kind = _bare(kind)
        if part.startswith("["):
            kind = typing.get_args(kind)[0] if typing.get_origin(kind) is tuple else None
        elif isinstance(kind, type) and issubclass(kind, msgspec.Struct):
            kind = typing.get_type_hints(kind, include_extras=True).get(part)
        else:
            return None
    return kind


def _bare(kind: Any) -> Any:
    """`kind` without its `Annotated` and its `| None`."""
    while True:
        if typing.get_origin(kind) is Annotated:
            kind = typing.get_args(kind)[0]
        elif typing.get_origin(kind) in (UnionType, typing.Union):
            options = [a for a in typing.get_args(kind) if a is not NoneType]
            if len(options) != 1:
                return kind
            kind = options[0]
        else:
            return kind


def _choices(field: Any) -> tuple:
    """The values a `Literal` field allows."""
    kind = _bare(field)
    return typing.get_args(kind) if typing.get_origin(kind) is Literal else ()


def _pattern_described(field: Any) -> str | None:
    """The `description` in the `Meta` that gives a field its `pattern` (of an optional field
    too)."""
    if typing.get_origin(field) in (UnionType, typing.Union):
        options = [a for a in typing.get_args(field) if a is not NoneType]
        field = options[0] if len(options) == 1 else field
    metas = typing.get_args(field)[1:] if typing.get_origin(field) is Annotated else ()
    return next((m.description for m in metas if isinstance(m, msgspec.Meta) and m.pattern), None)


def line_of(text: str, key: str) -> int | None:
    """The line (from 1) where dotted `key` ("look.glow") is set in TOML `text`, or its table
    starts ("look"); None if it cannot be found (an inline table, say). A table of an array
    is named by its index, as msgspec names it: "cue[1].scene", in the second [[cue]]."""
    *tables, leaf = key.split(".")
    table, found, arrays = "", None, {}
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if stripped.startswith("[") and stripped.endswith("]"):
            table = stripped.strip("[] ")
            if stripped.startswith("[["):
                arrays[table] = arrays.get(table, -1) + 1
                table = f"{table}[{arrays[table]}]"
            if table == key:
                found = found or number
        elif table == ".".join(tables) and stripped.split("=")[0].strip() == leaf:
            return number
    return found
