"""Where the shipped data folders (configs/, shaders/) are: inside the installed wheel, or at the
repository root for an editable install."""

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def data_dir(name: str) -> Path:
    inside = _PACKAGE / name
    return inside if inside.is_dir() else _PACKAGE.parent / name
