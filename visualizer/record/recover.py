"""`neuroweb recover [FOLDER]`: a recording cut short (a crash, kill -9, a power cut) leaves its
hidden partial files beside where its mp4 was to go (`.NAME.partial.mkv` and
`.NAME.partial.wav`, both playable as they are); each is remuxed into `NAME.recovered.mp4`,
video and sound up to where they were cut, and the partials are removed. A render drawn in
parts (render/offline.py) leaves them in its hidden `.NAME.parts/` folder: its first part's
partials (the video from its start, and the whole sound so far) are recovered the same way,
beside the folder, and the folder is removed.

A recording holds its partial video locked while it is made (`hold`), so that one still being
made is never taken for leftovers, and its own leftovers from an earlier try are recovered
before it begins.
"""

import fcntl
import re
import shutil
import sys
import wave
from pathlib import Path
from typing import IO

from visualizer.errors import UserError
from visualizer.record.mux import remux

PARTIAL = re.compile(r"^\.(?P<name>.+)\.partial\.mkv$")
PARTS = re.compile(r"^\.(?P<name>.+)\.parts$")


def parts_folder(out: Path) -> Path:
    """Where a render to `out` in parts keeps its parts (matches PARTS)."""
    return out.with_name(f".{out.name}.parts")


def part_name(index: int) -> str:
    return f"part{index}.mp4"


FIRST_PART = f".{part_name(0)}.partial.mkv"  # in a parts folder: the first part's partial video


def leftovers(folder: Path) -> list[Path]:
    """The partial videos of recordings cut short in `folder` (not of ones still being made),
    oldest first."""
    try:
        found = [p for p in folder.iterdir() if PARTIAL.match(p.name) and p.is_file()]
        found += [p / FIRST_PART for p in folder.iterdir()
                  if PARTS.match(p.name) and (p / FIRST_PART).is_file()]  # fmt: skip
    except OSError:
        return []
    return sorted((p for p in found if not is_held(p)), key=lambda p: p.stat().st_mtime)


def recording_name(video: Path) -> str:
    """The name of the mp4 a leftover partial video was to become."""
    parts = PARTS.match(video.parent.name)
    return parts["name"] if parts else PARTIAL.match(video.name)["name"]


def mention_leftovers(*folders: Path) -> None:
    """One line for each of `folders` (each once) that holds unfinished recordings: where a
    run, render or kiosk records, at its start."""
    for folder in dict.fromkeys(f.resolve() for f in folders):
        found = leftovers(folder)
        if found:
            names = ", ".join(recording_name(p) for p in found[:3])
            more = f" and {len(found) - 3} more" if len(found) > 3 else ""
            print(f"neuroweb: {len(found)} unfinished recording(s) in {folder} ({names}{more}): "
                  f"`neuroweb recover {folder}` makes them playable", file=sys.stderr)  # fmt: skip


def _target(folder: Path, name: str) -> Path:
    """NAME.recovered.mp4 (.mov for a .mov: ProRes 4444 fits no mp4), not over another."""
    stem, kind = Path(name).stem, ".mov" if Path(name).suffix.lower() == ".mov" else ".mp4"
    target, n = folder / f"{stem}.recovered{kind}", 2
    while target.exists():
        target, n = folder / f"{stem}.recovered-{n}{kind}", n + 1
    return target


def _has_sound(wav: Path) -> bool:
    try:
        with wave.open(str(wav), "rb") as sound:
            return sound.getnframes() > 0
    except (OSError, EOFError, wave.Error):
        return False


def recover_one(video: Path) -> tuple[Path | None, str]:
    """One leftover partial video, with its sound if any, into `NAME.recovered.mp4`: the mp4
    (None if it could not be made, its partials then kept) and what happened."""
    own = PARTIAL.match(video.name)["name"]
    sound = video.parent / f".{own}.partial.wav"
    parts = PARTS.match(video.parent.name) is not None
    target = _target(video.parent.parent if parts else video.parent, recording_name(video))
    problem = remux(video, sound if _has_sound(sound) else None, target)
    if problem:
        target.unlink(missing_ok=True)
        return None, f"{problem}; its partial files are kept"
    said = "video and sound" if _has_sound(sound) else "video (no sound was kept)"
    if parts:  # the other parts are pieces of its middle: nothing to keep
        shutil.rmtree(video.parent, ignore_errors=True)
    for partial in (video, sound, *(video.parent / f".{own}.partial.{k}" for k in ("mp4", "mov"))):
        partial.unlink(missing_ok=True)
    return target, said


def recover_earlier(video: Path, out: Path) -> None:
    """Before anything is recorded to `out`: its earlier recording's leftover `video`, cut
    short, is recovered, and the user told where it went."""
    target, said = recover_one(video)
    print(f"neuroweb: an earlier recording to {out} was cut short: "
          + (f"recovered as {target}" if target else said), file=sys.stderr)  # fmt: skip


def recording_now(out: Path) -> UserError:
    """The refusal to record to `out` while another neuroweb records to it."""
    return UserError(f"{out}: another neuroweb is recording to it right now")


def hold(partial: Path, path: Path) -> IO[bytes]:
    """The partial file, created and locked for as long as the returned handle is open (the
    lock goes with the process, however it ends): a recording still being made is told from
    the leftovers of one that was cut short. ffmpeg writes the same file. Leftovers of an
    earlier recording to `path` are recovered first, never recorded over."""
    handle = open(partial, "ab")  # nothing truncated before the lock is ours
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise recording_now(path) from None
    if partial.stat().st_size > 0:
        recover_earlier(partial, path)
    return handle


def is_held(partial: Path) -> bool:
    """Whether a running recording holds `partial` (see `hold`)."""
    try:
        with open(partial, "rb") as handle:
            fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError:
        return False
    return False


def recover(folder: Path) -> list[tuple[str, Path | None, str]]:
    """Each leftover: (its name, the recovered mp4 or None, what happened)."""
    return [(recording_name(video), *recover_one(video)) for video in leftovers(folder)]


def recover_command(folder: Path) -> int:
    """One line per unfinished recording; exit 1 if any could not be recovered."""
    if not folder.is_dir():
        raise UserError(f"recover: {folder}: no such folder")
    results = recover(folder)
    if not results:
        print(f"neuroweb: no unfinished recordings in {folder}", file=sys.stderr)
    for name, target, said in results:
        if target is not None:
            print(f"neuroweb: recovered {name} as {target} ({said})", file=sys.stderr)
        else:
            print(f"neuroweb: {name}: {said}", file=sys.stderr)
    return 0 if all(target is not None for _, target, _ in results) else 1
