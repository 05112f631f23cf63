"""`neuroweb soak`: the kiosk, headless and with time compressed, run for a while with faults
injected, then a JSON report. A tool for the technician and for CI, not a unit test.

The playlist runs with short answers and no pauses, so an hour of soak covers far more
prompts and scene changes than an hour on the wall. With --inject-faults it takes turns, every
`--fault-every` seconds, at: an exception in the model process, a recording whose ffmpeg is
killed, and a corrupted preset written while the kiosk watches it (then mended). A fault is
survived when the kiosk is still drawing and answering afterwards.
"""

import json
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
from visualizer.kiosk import Kiosk, kiosk_log, looks_of
from visualizer.model.stream import ModelStream
from visualizer.render.app import App
from visualizer.render.context import HeadlessTarget
from visualizer.render.controls import Controls

FAULT_EVERY_S = 20.0
WARM_UP_S = 120.0  # memory is measured from here on: caches and the allocator settle first
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
    me = psutil.Process()
    target = HeadlessTarget(SIZE)
    app = App(settings, target, ModelStream(settings).start(), FixedStepClock(30),
              adaptive=False, watch=watch, controls=Controls(parse_keys(settings.kiosk.exit_keys)))
    kiosk = Kiosk(app, looks_of(settings), kiosk_log(settings.kiosk))
    start = time.monotonic()
    report = {"frames": 0, "longest_frame_ms": 0.0, "answers": 0, "restarts": 0,
              "faults_injected": 0, "faults_survived": 0, "crashes": 0}  # fmt: skip
    rss_start, by_minute = None, []
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
            report["longest_frame_ms"] = max(report["longest_frame_ms"],
                                             1000 * (time.perf_counter() - began))  # fmt: skip
            report["frames"] += 1
            recovery.watch(kiosk)
            if rss_start is None and now - start >= warm_up_s:
                rss_start = me.memory_info().rss
            if now - start >= 60 * (len(by_minute) + 1):
                by_minute.append(round(me.memory_info().rss / 2**20, 1))
            if pending is not None and kiosk.answers > pending[1] + 1 and app.running:
                report["faults_survived"] += 1  # two more answers since: it healed
                pending = None
            if faults and now >= next_fault and pending is None:
                fault = FAULTS[turn % len(FAULTS)]
                _inject(fault, app, watch, folder)
                if fault == "model":
                    recovery.fault(kiosk.restarts)
                report["faults_injected"] += 1
                pending, turn, next_fault = (turn, kiosk.answers), turn + 1, now + every_s
        rss_end = me.memory_info().rss  # while it still runs: not after the clean-up below
    finally:
        kiosk.close()
        app.release()
        app.stream.stop()
        target.close()
    rss_start = rss_start or rss_end
    report.update(answers=kiosk.answers, restarts=kiosk.restarts, seconds=round(seconds),
                  rss_start_mb=round(rss_start / 2**20, 1), rss_end_mb=round(rss_end / 2**20, 1),
                  rss_growth_pct=round(100 * (rss_end - rss_start) / rss_start, 2),
                  rss_mb_by_minute=by_minute, longest_restart_ms=recovery.restart_ms,
                  longest_reload_s=recovery.reload_s)  # fmt: skip
    for key in ("longest_frame_ms", "longest_restart_ms", "longest_reload_s"):
        report[key] = round(report[key], 1)
    return report


class _Recovery:
    """Times each injected model fault: until a fresh model process is starting (the restart),
    and until it answers again (the reload: the model loads meanwhile)."""

    def __init__(self) -> None:
        self.restart_ms = self.reload_s = 0.0
        self._since: float | None = None
        self._restarts: int | None = None  # before the fault; None once restarted

    def fault(self, restarts: int) -> None:
        self._since, self._restarts = time.monotonic(), restarts

    def watch(self, kiosk: Kiosk) -> None:
        if self._since is None:
            return
        elapsed = time.monotonic() - self._since
        if self._restarts is not None and kiosk.restarts > self._restarts:
            self.restart_ms, self._restarts = max(self.restart_ms, 1000 * elapsed), None
        elif self._restarts is None and kiosk.app.status.state == "generating":
            self.reload_s, self._since = max(self.reload_s, elapsed), None


def _inject(fault: str, app: App, watch: PresetWatch, folder: Path) -> None:
    if fault == "model":
        app.stream.inject_fault()
    elif fault == "ffmpeg":
        if app.recording is None:
            app.start_recording(folder / "soak.mp4")
        app.frame()  # a frame into it
        if app.recording is not None:
            os.kill(app.recording.encoder_pid, signal.SIGKILL)
    else:
        good = watch.path.read_text()
        watch.path.write_text("[look\nglow = = 3\n")
        _touch(watch.path)
        app._next_poll = 0.0
        app.frame()  # it sees the broken file, says so, keeps its settings
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
