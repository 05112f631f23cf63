"""The film put together: runs → their events → the plan (grammar.py) → the picture, drawn by
`neuroweb render`'s offline renderer with the plan's director as its run (cut.py; in parts on
both cores) → a photosensitivity notice card in front when the flash limiter held flashes back
(or was off) → the soundtrack (soundtrack.py) normalised → the mp4, and beside it the edit as
OpenTimelineIO (timeline.py).

Work files go to a hidden folder beside the output, removed at the end; the mp4 appears whole
or not at all.
"""

import os
import shutil
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from msgspec import structs

from visualizer.config import Settings
from visualizer.film.cards import Credits, model_size
from visualizer.film.cut import Edit, held_in
from visualizer.film.events import find_events
from visualizer.film.grammar import Plan, Shot, Step, plan_film
from visualizer.film.soundtrack import normalised, soundtrack, write_wav
from visualizer.film.timeline import write_timeline
from visualizer.record.mux import join, remux
from visualizer.render.offline import Run, render_video
from visualizer.sound.synth import RATE

NOTICE_BEATS = 6  # the notice card's length


@dataclass(frozen=True)
class Footage:
    """The film's material: runs of the model, each with where it came from."""

    runs: tuple[Run, ...]
    sources: tuple[str, ...]  # a trace's path, or "prompt"
    ablated: int = -1  # the run of the ablation interlude (-1: none)


@dataclass(frozen=True)
class Made:
    out: Path
    timeline: Path
    frames: int
    fps: int
    cuts: int
    lufs: float
    held: int  # frames the limiter held back; -1: it was off
    render_s: float  # drawing the picture
    wall_s: float  # all of it, from the runs on

    @property
    def seconds(self) -> float:
        return self.frames / self.fps

    @property
    def cuts_per_minute(self) -> float:
        return self.cuts * 60 / self.seconds


def film_settings(settings: Settings, limit_flashes: bool) -> Settings:
    """The preset's settings for a film: its chance moves (look.glitch) off, since every move
    of the film is caused by an event; the flash limiter as asked."""
    return structs.replace(
        settings, look=structs.replace(settings.look, glitch=0.0),
        safety=structs.replace(settings.safety, flash_limit=limit_flashes))  # fmt: skip


def make_film(footage: Footage, settings: Settings, out: Path, size: tuple[int, int], fps: int,
              length_s: float, bpm: float, seed: int, processes: int = 0) -> Made:  # fmt: skip
    began = time.perf_counter()
    frames = tuple(tuple(run.frames) for run in footage.runs)
    events = [find_events(f, i) for i, f in enumerate(frames)]
    plan = plan_film(frames, events, length_s, fps, bpm, seed, footage.ablated)
    first = footage.runs[0]
    prompts = tuple(run.prompt for run in footage.runs)
    plain = tuple(p for i, p in enumerate(prompts) if i != footage.ablated)
    credits = Credits(first.model or "a language model", plain, model_size(first.architecture))
    work = out.with_name(f".{out.name}.film")
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir()
    try:
        edit = Edit(frames=[], model=first.model, prompt=first.prompt,
                    architecture=first.architecture, notes=first.notes, runs=frames,
                    prompts=prompts, plan=plan, credits=credits, held_to=work)  # fmt: skip
        drawing = time.perf_counter()
        video = _draw(edit, settings, work / "body.mp4", size, processes)
        held = held_in(work)
        lead = 0
        if held != 0:  # the notice first: its count is known only now
            notice = notice_plan(fps, bpm)
            card = replace(edit, plan=notice, credits=replace(credits, held=held), held_to=None)
            problem = join([_draw(card, settings, work / "notice.mp4", size, 1), video], None,
                           work / "video.mp4")  # fmt: skip
            if problem:
                raise RuntimeError(problem)
            video, lead = work / "video.mp4", len(notice.steps)
        render_s = time.perf_counter() - drawing
        sound = soundtrack(plan, frames, settings.sound, seed)
        sound = np.vstack([np.zeros((lead * RATE // fps, 2), np.float32), sound])
        sound, lufs = normalised(sound)
        write_wav(work / "film.wav", sound)
        partial = work / "film.mp4"
        problem = remux(video, work / "film.wav", partial)
        if problem:
            raise RuntimeError(problem)
        os.replace(partial, out)
    except KeyboardInterrupt as stop:
        stop.kept = None  # the parts are in the work folder, about to go
        raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    timeline = out.with_suffix(".otio")
    about = {"model": credits.model, "prompts": list(prompts), "sources": list(footage.sources),
             "seed": seed, "held_back": held, "lufs": lufs,
             "ablated_run": footage.ablated}  # fmt: skip
    write_timeline(timeline, plan, out, lead, about)
    return Made(out, timeline, lead + len(plan.steps), fps, len(plan.cuts), lufs, held,
                render_s, time.perf_counter() - began)  # fmt: skip


def _draw(edit: Edit, settings: Settings, out: Path, size: tuple[int, int],
          processes: int) -> Path:  # fmt: skip
    """The edit's picture, silent, through the offline renderer."""
    total = len(edit.plan.steps)
    return render_video(edit, settings, out, size, edit.plan.fps, ([], total), sound=False,
                        processes=processes)  # fmt: skip


def notice_plan(fps: int, bpm: float) -> Plan:
    """The photosensitivity notice: a card of NOTICE_BEATS beats, nothing else."""
    frames = round(NOTICE_BEATS * 60 * fps / bpm)
    shot = Shot(0, frames, "card", None, card="notice")
    return Plan(fps, bpm, (Step(),) * frames, (shot,))
