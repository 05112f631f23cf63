"""Where the shipped data folders (configs/, shaders/) are: inside the installed wheel, or at the
repository root for an editable install; and whether an output file can be written."""

from pathlib import Path

from visualizer.errors import UserError

_PACKAGE = Path(__file__).resolve().parent


def data_dir(name: str) -> Path:
    inside = _PACKAGE / name
    return inside if inside.is_dir() else _PACKAGE.parent / name


def check_output_path(path: Path) -> Path:
    """`path` if a file (a video, a poster) can be written there; otherwise UserError saying
    why. Callers that have slow work to do first (loading a model) check before it."""
    if path.parent.exists() and not path.parent.is_dir():
        raise UserError(f"{path}: {path.parent} is not a folder")
    if not path.parent.is_dir():
        raise UserError(f"{path}: folder {path.parent} does not exist")
    if path.is_dir():
        raise UserError(f"{path}: is a folder, expected a file name")
    return _writable(path)


def check_output(path: Path, alpha: bool = False) -> Path:
    """`path` checked as a video's (`alpha`: an alpha render's, a .mov or else a folder of
    PNGs) before anything is drawn; UserError saying why it cannot be."""
    if alpha and path.suffix.lower() != ".mov":
        return check_output_folder(path)
    return check_output_path(path)


def check_output_folder(path: Path) -> Path:
    """`path` if a folder of files (an alpha render's PNGs) can be made there: new, or empty;
    otherwise UserError saying why."""
    if not path.parent.is_dir():
        raise UserError(f"{path}: folder {path.parent} does not exist")
    if path.exists() and not path.is_dir():
        raise UserError(f"{path}: is a file, expected a folder for the PNGs")
    if path.is_dir() and any(path.iterdir()):
        raise UserError(f"{path}: the folder is not empty (the frames would mix with its files)")
    return _writable(path)


def _writable(path: Path) -> Path:
    probe = path.with_name(f".{path.name}.probe")
    try:  # permissions, a read-only disk, a system folder: find out before the first frame
        probe.open("wb").close()
        probe.unlink()
    except OSError as error:
        raise UserError(f"{path}: cannot write there ({error.strerror})") from None
    return path
