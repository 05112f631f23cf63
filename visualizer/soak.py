"""`neuroweb soak`: the kiosk, headless and with time compressed, run for a while with faults
injected, then a JSON report. A tool for the technician and for CI, not a unit test.

The playlist runs with short answers and no pauses, so an hour of soak covers far more
prompts and scene changes than an hour on the wall. With --inject-faults it takes turns, every
`--fault-every` seconds, at: an exception in the model process, a recording whose ffmpeg is
killed, and a corrupted preset written while the kiosk watches it (then mended). A fault is
survived when the kiosk is still drawing and answering afterwards.
"""

import json
import math
import os
import shutil
import signal
import tempfile
import time
import traceback
from pathlib import Path

import psutil

from visualizer.clock import FixedStepClock
from visualizer.config import PresetWatch, Settings, load_settings, parse_keys, preset_path
from visualizer.kiosk import Kiosk, kiosk_log, kiosk_source, looks_of
from visualizer.render.app import App
from visualizer.render.context import HeadlessTarget
from visualizer.render.controls import Controls
from visualizer.sources.local import LocalSource

FAULT_EVERY_S = 20.0
WARM_UP_S = 120.0  # memory is measured from the first whole minute after this
SIZE = (320, 180)
FAULTS = ("model", "ffmpeg", "preset")


def soak_settings(model: str, log_file: Path) -> dict:
    """What compresses time: short answers, no pauses, quick scene changes."""
    return {
        "model": {"name": model},
        "kiosk": {"tokens": 16, "pause_s": 0.0, "scene_s": 4.0, "stall_s": 20.0,
                  "log_file": str(log_file), "attract_file": str(log_file.with_suffix(".npz"))},
    }


def soak(minutes: float, inject_faults: bool, model: str = "", every_s: float = FAULT_EVERY_S,
         warm_up_s: float = WARM_UP_S) -> dict:  # fmt: skip
    folder = Path(tempfile.mkdtemp(prefix="neuroweb-soak-"))
    try:
        preset = folder / "kiosk.toml"
        shutil.copy(preset_path("kiosk"), preset)
        watch = PresetWatch(str(preset), soak_settings(model, folder / "kiosk.log"))
        settings = load_settings(str(preset), watch.overrides)
        return _run(settings, watch, minutes * 60, inject_faults, folder, every_s, warm_up_s)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _run(settings: Settings, watch: PresetWatch, seconds: float, faults: bool, folder: Path,
         every_s: float, warm_up_s: float) -> dict:  # fmt: skip
    target = HeadlessTarget(SIZE)
    log = kiosk_log(settings.kiosk)
    source, attract = kiosk_source(settings, log)
    model = source.source  # the model process itself: faults are injected into it
    app = App(settings, target, source, FixedStepClock(30), adaptive=False, watch=watch,
              controls=Controls(parse_keys(settings.kiosk.exit_keys)), log=log)  # fmt: skip
    kiosk = Kiosk(app, looks_of(settings), log, attract)
    start = time.monotonic()
    report = {"frames": 0, "longest_frame_ms": 0.0, "answers": 0, "restarts": 0,
              "faults_injected": 0, "faults_survived": 0, "crashes": 0}  # fmt: skip
    memory = _Memory(start)
    next_fault, turn, pending = start + every_s, 0, None
    recovery = _Recovery()
    try:
        while (now := time.monotonic()) - start < seconds:
            began = time.perf_counter()
            try:
                app.frame()
                kiosk.tick()
            except Exception as exc:  # noqa: BLE001 - what a kiosk must never do: counted
                report["crashes"] += 1
                report["crash"] = "".join(traceback.format_exception_only(exc)).strip()
                break
            frame_ms = 1000 * (time.perf_counter() - began)
            report["longest_frame_ms"] = max(report["longest_frame_ms"], frame_ms)
            report["frames"] += 1
            recovery.watch(kiosk, frame_ms)
            memory.sample(now)
            if pending is not None and kiosk.answers > pending[1] + 1 and app.running:
                report["faults_survived"] += 1  # two more answers since: it healed
                pending = None
            if faults and now >= next_fault and pending is None:
                _inject(FAULTS[turn % len(FAULTS)], app, model, watch, folder)
                report["faults_injected"] += 1
                pending, turn, next_fault = (turn, kiosk.answers), turn + 1, now + every_s
    finally:
        kiosk.close()
        app.release()
        source.stop()
        target.close()
    report.update(answers=kiosk.answers, restarts=kiosk.restarts, seconds=round(seconds),
                  longest_restart_frame_ms=recovery.restart_frame_ms,
                  longest_reload_s=recovery.reload_s, **memory.report(warm_up_s))  # fmt: skip
    for key in ("longest_frame_ms", "longest_restart_frame_ms", "longest_reload_s"):
        report[key] = round(report[key], 1)
    return report


class _Memory:
    """This process's RSS, sampled once a second (while the kiosk runs, not after its clean-up).
    A minute's floor is what a leak raises; its peak also holds passing loads (a recording's
    buffers, a restart), so the growth is taken from floor to floor: the first whole minute
    after the warm-up against the last minute."""

    def __init__(self, start: float) -> None:
        self.start, self._next = start, start
        self._process = psutil.Process()
        self.floors: list[float] = []
        self.peaks: list[float] = []

    def sample(self, now: float) -> None:
        if now < self._next:
            return
        self._next = now + 1.0
        rss = self._process.memory_info().rss / 2**20
        minute = int((now - self.start) // 60)
        while len(self.floors) <= minute:
            self.floors.append(rss)
            self.peaks.append(rss)
        self.floors[minute] = min(self.floors[minute], rss)
        self.peaks[minute] = max(self.peaks[minute], rss)

    def report(self, warm_up_s: float) -> dict:
        first = min(math.ceil(warm_up_s / 60), len(self.floors) - 1)
        begin, end = self.floors[first], self.floors[-1]
        return {"rss_start_mb": round(begin, 1), "rss_end_mb": round(end, 1),
                "rss_growth_pct": round(100 * (end - begin) / begin, 2),
                "rss_floor_mb_by_minute": [round(m, 1) for m in self.floors],
                "rss_peak_mb_by_minute": [round(m, 1) for m in self.peaks]}  # fmt: skip


class _Recovery:
    """Times each model restart: the frame it happened in (the window must not stall), and
    from it until the fresh process answers (it loads meanwhile, the attract loop plays)."""

    def __init__(self) -> None:
        self.restart_frame_ms = self.reload_s = 0.0
        self._restarts = 0
        self._since: float | None = None

    def watch(self, kiosk: Kiosk, frame_ms: float) -> None:
        now = time.monotonic()
        if kiosk.restarts > self._restarts:
            self._restarts, self._since = kiosk.restarts, now
            self.restart_frame_ms = max(self.restart_frame_ms, frame_ms)
        elif self._since is not None and kiosk.app.state == "generating":
            self.reload_s, self._since = max(self.reload_s, now - self._since), None


def _inject(fault: str, app: App, model: LocalSource, watch: PresetWatch, folder: Path) -> None:
    if fault == "model":
        model.inject_fault()
    elif fault == "ffmpeg":
        if app.recording_encoder_pid is None:
            app.start_recording(folder / "soak.mp4")
        app.frame()  # a frame into it
        if app.recording_encoder_pid is not None:
            os.kill(app.recording_encoder_pid, signal.SIGKILL)
    else:
        good = watch.path.read_text()
        watch.path.write_text("[look\nglow = = 3\n")
        _touch(watch.path)
        app.poll_files(now_or_never=True)  # it sees the broken file, says so, keeps its settings
        watch.path.write_text(good)
        _touch(watch.path)


def _touch(path: Path) -> None:
    stamp = path.stat().st_mtime + 1
    os.utime(path, (stamp, stamp))


def soak_command(minutes: float, inject_faults: bool, model: str, every_s: float) -> int:
    """Prints the report; exits 1 when the kiosk crashed or a fault was not survived (the last
    one may still be healing when the time is up)."""
    report = soak(minutes, inject_faults, model, every_s, min(WARM_UP_S, minutes * 15))
    print(json.dumps(report))
    healed = report["faults_survived"] >= report["faults_injected"] - 1
    return 0 if report["crashes"] == 0 and healed else 1
