"""ffmpeg run once over finished files, streams copied rather than encoded again: a recording's
partials into its mp4 (`remux`), and the parts of a render into one video (`join`)."""

import os
import subprocess
from pathlib import Path

import imageio_ffmpeg

TIMEOUT_S = 300.0  # a copy of streams, not an encode: minutes at the very most


def remux(video: Path, sound: Path | None, out: Path, fps: int | None = None) -> str | None:
    """Matroska (+ WAV) → mp4 with the index up front (+faststart); the soundtrack becomes AAC.
    For a .mov `out` (ProRes 4444: an alpha render), QuickTime, the sound kept as 16-bit PCM,
    and with `fps` the frames timed exactly k/fps again (Matroska keeps milliseconds: 33, 67,
    100 …, a variable rate to an editor). The video is copied, not encoded again, so this takes
    a moment, not a re-render. Why not, if it could not be done."""
    mov = out.suffix.lower() == ".mov"
    inputs, mapping = ["-i", str(video)], ["-map", "0:v:0", "-c:v", "copy"]
    if mov and fps:
        mapping += ["-bsf:v", f"setts=prescale=1:time_base=1/{fps}:ts=N:duration=1"]
    if sound is not None:
        inputs += ["-i", str(sound)]
        mapping += ["-map", "1:a:0", *(["-c:a", "pcm_s16le"] if mov
                                        else ["-c:a", "aac", "-b:a", "192k"])]  # fmt: skip
    command = [imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y",
               *inputs, *mapping, "-movflags", "+faststart", "-f", "mov" if mov else "mp4",
               str(out)]  # fmt: skip
    try:
        done = subprocess.run(command, capture_output=True, timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        return "ffmpeg could not finish the mp4 in time"
    if done.returncode != 0:
        said = next((x.strip() for x in done.stderr.decode(errors="replace").splitlines()
                     if x.strip()), "")  # fmt: skip
        return f"ffmpeg could not write the mp4: {said}"
    return None


def join(parts: list[Path], sound: Path | None, out: Path) -> str | None:
    """The videos of `parts` (mp4s encoded alike) one after another, with the soundtrack of
    `sound` (an mp4 whose sound is the whole video's), into `out`, through hidden partial
    files; the streams are copied, not encoded again. Each part's video is first copied
    alone: a part with sound starts where its AAC priming does, 21 ms early, and the
    concatenation would move the next part's frames by as much. Why not, if it could not be
    done."""
    ffmpeg = [imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y"]
    alone = [p.with_name(f".{p.name}.video.mp4") for p in parts]
    listing = out.with_name(f".{out.name}.parts.txt")
    finished = out.with_name(f".{out.name}.partial.mp4")
    commands = [[*ffmpeg, "-i", str(p), "-map", "0:v:0", "-c", "copy", "-f", "mp4", str(v)]
                for p, v in zip(parts, alone, strict=True)]  # fmt: skip
    inputs, mapping = ["-f", "concat", "-safe", "0", "-i", str(listing)], ["-map", "0:v:0"]
    if sound is not None:
        inputs += ["-i", str(sound)]
        mapping += ["-map", "1:a:0"]
    commands.append([*ffmpeg, *inputs, *mapping, "-c", "copy", "-movflags", "+faststart",
                     "-f", "mp4", str(finished)])  # fmt: skip
    listing.write_text("".join(f"file '{v.resolve()}'\n" for v in alone))
    try:
        for command in commands:
            done = subprocess.run(command, capture_output=True, timeout=TIMEOUT_S)
            if done.returncode != 0:
                finished.unlink(missing_ok=True)
                said = next((x.strip() for x in done.stderr.decode(errors="replace").splitlines()
                             if x.strip()), "")  # fmt: skip
                return f"ffmpeg could not join the parts: {said}"
    except subprocess.TimeoutExpired:
        return "ffmpeg could not join the parts in time"
    finally:
        for path in (*alone, listing):
            path.unlink(missing_ok=True)
    os.replace(finished, out)
    return None
