"""The film's edit list as OpenTimelineIO (`film.otio` beside `film.mp4`), for an editor to open
and re-cut: one video track of clips, one per shot, each a range of the mp4; each clip's
metadata["neuroweb"] says its move, run, camera and card, and the event that cut to it (run,
token index, kind, value, words); a marker at each cut carries the same event."""

from pathlib import Path

import opentimelineio as otio

from visualizer.film.grammar import Plan, Shot

KEY = "neuroweb"


def write_timeline(path: Path, plan: Plan, media: Path, lead: int, about: dict) -> None:
    """`lead`: video frames before the plan's first (a notice card, its own clip); `about`:
    the film's own metadata (model, prompts, traces, tempo …)."""
    fps = plan.fps
    total = lead + len(plan.steps)
    reference = otio.schema.ExternalReference(
        target_url=media.name, available_range=_range(0, total, fps))
    track = otio.schema.Track(name="film", kind=otio.schema.TrackKind.Video)
    shots = list(plan.shots)
    if lead:
        track.append(_clip(Shot(0, lead, "card", None, card="notice"), 0, fps, reference, 0))
    for i, shot in enumerate(shots):
        track.append(_clip(shot, lead, fps, reference, i + 1))
    timeline = otio.schema.Timeline(name=media.stem, global_start_time=otio.opentime.RationalTime(
        0, fps))  # fmt: skip
    timeline.tracks.append(track)
    timeline.metadata[KEY] = {**about, "fps": fps, "bpm": plan.bpm, "frames": total,
                              "cuts": len(plan.cuts)}  # fmt: skip
    otio.adapters.write_to_file(timeline, str(path))


def _range(start: int, frames: int, fps: int) -> otio.opentime.TimeRange:
    return otio.opentime.TimeRange(otio.opentime.RationalTime(start, fps),
                                   otio.opentime.RationalTime(frames, fps))  # fmt: skip


def _clip(shot: Shot, lead: int, fps: int, reference, number: int) -> otio.schema.Clip:
    name = f"{number:03d} {shot.card or shot.move}"
    clip = otio.schema.Clip(name=name, media_reference=reference.clone(),
                            source_range=_range(lead + shot.start, shot.end - shot.start, fps))
    event = shot.event.metadata() if shot.event is not None else None
    clip.metadata[KEY] = {"move": shot.move, "run": shot.run, "card": shot.card,
                          "camera": list(shot.camera), "scene": shot.scene, "event": event,
                          "start_frame": lead + shot.start}  # fmt: skip
    if event is not None:
        clip.markers.append(otio.schema.Marker(
            name=f"cut: {event['kind']} at token {event['token']}",
            marked_range=_range(lead + shot.start, 1, fps), metadata={KEY: event}))  # fmt: skip
    return clip


def read_cuts(path: Path) -> list[dict]:
    """Each clip's metadata, in order (a test, or a script, reading the edit back)."""
    timeline = otio.adapters.read_from_file(str(path))
    return [_plain(clip.metadata[KEY]) | {"name": clip.name} for clip in timeline.find_clips()]


def _plain(value):
    """OTIO's metadata as plain dicts and lists (its own live only as long as the timeline)."""
    if isinstance(value, str | bytes):
        return value
    if hasattr(value, "items"):
        return {k: _plain(v) for k, v in value.items()}
    if hasattr(value, "__iter__"):
        return [_plain(v) for v in value]
    return value
