"""`neuroweb soak`: the kiosk, headless and with time compressed, run for a while with faults
injected, then a JSON report. A tool for the technician and for CI, not a unit test.

The playlist runs with short answers and no pauses, so an hour of soak covers far more
prompts and scene changes than an hour on the wall. With --inject-faults it takes turns, every
`--fault-every` seconds, at: an exception in the model process, a recording whose ffmpeg is
killed, and a corrupted preset written while the kiosk watches it (then mended). A fault is
survived when the kiosk is still drawing and answering afterwards; one not healed within
HEAL_S ends the soak as stuck.

With --served the model is a `neuroweb serve` child process on loopback and the kiosk its
client; the model's fault is then a burst of requests that once ended the server, from a
client of its own (each must be refused or answered while the kiosk's answers go on), and the
server's memory is measured beside the kiosk's.

Memory is judged by the slope of the per-minute RSS floors after the warm-up (least squares,
MB per hour, with its 95 % interval): a first-to-last difference swings with noise.
"""

import contextlib
import json
import math
import os
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

import msgpack
import numpy as np
import psutil
import zmq
from scipy import stats

from visualizer import heap, wire
from visualizer.clock import FixedStepClock
from visualizer.config import PresetWatch, Settings, load_settings, parse_keys, preset_path
from visualizer.gl.context import HeadlessTarget
from visualizer.kiosk import Kiosk, kiosk_log, kiosk_source, looks_of
from visualizer.render.app import App
from visualizer.render.controls import Controls
from visualizer.sources import FrameSource
from visualizer.sources.local import LocalSource

FAULT_EVERY_S = 20.0
WARM_UP_S = 120.0  # memory is measured from the first whole minute after this
SIZE = (320, 180)
FAULTS = ("model", "ffmpeg", "preset")
# a served soak's server logs its C heap each minute (server/network_thread.HEAP_LINE)
HEAP_PATTERN = r"heap: ([\d.]+) MB in use, ([\d.]+) MB free"
SERVER_READY_S = 120.0  # a served soak waits this long for its server to listen
HEAL_S = 600.0  # a fault not healed by then (two more answers) is a kiosk stuck: the soak fails
# (ten minutes: a model process reloads in 15-50 s and answers in 5-40 s on a busy 2-core host)


def soak_settings(model: str, log_file: Path, source: str = "") -> dict:
    """What compresses time: short answers, no pauses, quick scene changes."""
    return {
        "model": {"name": model, "source": source},
        "kiosk": {"tokens": 16, "pause_s": 0.0, "scene_s": 4.0, "stall_s": 20.0,
                  "log_file": str(log_file), "attract_file": str(log_file.with_suffix(".npz"))},
    }


def soak(minutes: float, inject_faults: bool, model: str = "", every_s: float = FAULT_EVERY_S,
         warm_up_s: float = WARM_UP_S, served: bool = False) -> dict:  # fmt: skip
    folder = Path(tempfile.mkdtemp(prefix="neuroweb-soak-"))
    server = _Server(model, folder) if served else None
    try:
        preset = folder / "kiosk.toml"
        shutil.copy(preset_path("kiosk"), preset)
        source = server.address if server is not None else ""
        watch = PresetWatch(str(preset), soak_settings(model, folder / "kiosk.log", source))
        settings = load_settings(str(preset), watch.overrides)
        report = _run(settings, watch, minutes * 60, inject_faults, folder, every_s, warm_up_s,
                      server)  # fmt: skip
        if server is not None:
            report["server_exit"] = server.stop()
            report["server"].update(server.heap())
        return report
    finally:
        if server is not None:
            server.stop()
        shutil.rmtree(folder, ignore_errors=True)


class _Server:
    """A `neuroweb serve` child process on a free loopback port, for a served soak."""

    def __init__(self, model: str, folder: Path) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        self.address = f"127.0.0.1:{port}"
        preset = folder / "serve.toml"  # its C heap logged each minute (heap_log_s)
        preset.write_text("[serve]\nheap_log_s = 60.0\n")
        command = [sys.executable, "-m", "visualizer", "serve", "--listen", self.address,
                   "--threads", "1", "--preset", str(preset),
                   *(["--model", model] if model else [])]  # fmt: skip
        self.log_path = folder / "serve.log"
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(command, stdout=self._log, stderr=subprocess.STDOUT)
        self.memory: _Memory | None = None

    def heap(self) -> dict:
        """Its C heap at each minute, from the lines it logged (once it has stopped)."""
        found = re.findall(HEAP_PATTERN, self.log_path.read_text(errors="replace"))
        return {"heap_in_use_mb_by_minute": [float(used) for used, _ in found],
                "heap_free_mb_by_minute": [float(free) for _, free in found]}

    def stop(self) -> int | None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()
        return self.process.returncode


def _run(settings: Settings, watch: PresetWatch, seconds: float, faults: bool, folder: Path,
         every_s: float, warm_up_s: float, server: _Server | None = None) -> dict:  # fmt: skip
    target = HeadlessTarget(SIZE)
    log = kiosk_log(settings.kiosk)
    source, attract = kiosk_source(settings, log)
    model = source.source  # the model process (or the server's client): faults go into it
    app = App(settings, target, source, FixedStepClock(30), adaptive=False, watch=watch,
              controls=Controls(parse_keys(settings.kiosk.exit_keys)), log=log)  # fmt: skip
    kiosk = Kiosk(app, looks_of(settings), log, attract)
    start = time.monotonic()
    report = {"frames": 0, "longest_frame_ms": 0.0, "answers": 0, "restarts": 0,
              "faults_injected": 0, "faults_survived": 0, "crashes": 0}  # fmt: skip
    memory = _Memory(start)
    server_memory = _Memory(start, server.process.pid) if server is not None else None
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
            if server_memory is not None:
                if server.process.poll() is not None:
                    report["crashes"] += 1
                    report["crash"] = f"the server ended with status {server.process.returncode}"
                    break
                server_memory.sample(now)
            if pending is not None and kiosk.answers > pending[1] + 1 and app.running:
                report["faults_survived"] += 1  # two more answers since: it healed
                pending = None
            if pending is not None and now - pending[2] > HEAL_S:
                report["stuck"] = (f"{FAULTS[pending[0] % len(FAULTS)]} fault at "
                                   f"{pending[2] - start:.0f} s: no two answers in {HEAL_S:g} s")
                break
            if faults and now >= next_fault and pending is None:
                _inject(FAULTS[turn % len(FAULTS)], app, model, watch, folder)
                report["faults_injected"] += 1
                pending, turn, next_fault = (turn, kiosk.answers, now), turn + 1, now + every_s
    finally:
        kiosk.close()
        app.release()
        source.stop()
        target.close()
    report.update(answers=kiosk.answers, restarts=kiosk.restarts, seconds=round(seconds),
                  longest_restart_frame_ms=recovery.restart_frame_ms,
                  longest_reload_s=recovery.reload_s, **memory.report(warm_up_s))  # fmt: skip
    if server_memory is not None:
        report["server"] = server_memory.report(warm_up_s)
    for key in ("longest_frame_ms", "longest_restart_frame_ms", "longest_reload_s"):
        report[key] = round(report[key], 1)
    return report


class _Memory:
    """A process's RSS (this one by default), sampled once a second while the kiosk runs. A
    minute's floor is what a leak raises; its peak also holds passing loads (a recording's
    buffers, a restart), so growth is judged from the floors after the warm-up."""

    def __init__(self, start: float, pid: int | None = None) -> None:
        self.start, self._next = start, start
        self._process = psutil.Process(pid)
        self.floors: list[float] = []
        self.peaks: list[float] = []
        self.heap: list[dict[str, float]] = []  # this process's C heap at each minute's floor
        self.regions: list[dict[str, float]] = []  # its RSS by kind of mapping, once a minute
        self._own = pid is None

    def sample(self, now: float) -> None:
        if now < self._next:
            return
        self._next = now + 1.0
        try:
            rss = self._process.memory_info().rss / 2**20
        except psutil.Error:  # a child that has just ended: the caller sees it
            return
        minute = int((now - self.start) // 60)
        lower = len(self.floors) <= minute or rss < self.floors[minute]
        while len(self.floors) <= minute:
            self.floors.append(rss)
            self.peaks.append(rss)
        if len(self.regions) <= minute:  # once a minute: 1,400 mappings with torch: 36 ms
            with contextlib.suppress(psutil.Error):
                self.regions.extend([regions_mb(self._process)] * (minute + 1 - len(self.regions)))
        if lower and self._own and (usage := heap.usage_mb()) is not None:
            del self.heap[minute:]
            self.heap.extend([usage] * (minute + 1 - len(self.heap)))
        self.floors[minute] = min(self.floors[minute], rss)
        self.peaks[minute] = max(self.peaks[minute], rss)

    def report(self, warm_up_s: float) -> dict:
        first = min(math.ceil(warm_up_s / 60), len(self.floors) - 1)
        begin, end = self.floors[first], self.floors[-1]
        # the last minute is cut short by the end of the run: its floor is of fewer samples
        whole = self.floors[first:-1] if len(self.floors) - first > 3 else self.floors[first:]
        return {"rss_start_mb": round(begin, 1), "rss_end_mb": round(end, 1),
                "rss_growth_pct": round(100 * (end - begin) / begin, 2),
                **floor_slope(whole),
                "rss_floor_mb_by_minute": [round(m, 1) for m in self.floors],
                "rss_peak_mb_by_minute": [round(m, 1) for m in self.peaks],
                **({"heap_in_use_mb_by_minute": [round(h["in_use"], 1) for h in self.heap],
                    "heap_free_mb_by_minute": [round(h["free"], 1) for h in self.heap]}
                   if self.heap else {}),
                "rss_mb_by_kind_by_minute": {kind: [round(r[kind], 2) for r in self.regions]
                                             for kind in KINDS}}  # fmt: skip


KINDS = ("brk heap", "thread stacks", "other anonymous", "files")


def regions_mb(process: psutil.Process) -> dict[str, float]:
    """The process's RSS in MB by kind of mapping, to place a growth that the C heap's own
    figures do not show: glibc's main heap (brk), thread stacks (anonymous, 8 MiB each, behind a
    guard page), other anonymous mappings (glibc's other arenas and its mmap'd blocks,
    Python's object arenas, torch's and Mesa's buffers) and files (libraries, mapped weights)."""
    kinds = dict.fromkeys(KINDS, 0.0)
    for region in process.memory_maps(grouped=False):
        if region.path == "[heap]":
            kind = "brk heap"
        elif region.path == "[anon]":
            stack = region.size == THREAD_STACK and region.perms.startswith("rw")
            kind = "thread stacks" if stack else "other anonymous"
        elif region.path.startswith("["):
            continue  # the main stack, vdso and the like: a few pages
        else:
            kind = "files"
        kinds[kind] += region.rss / 2**20
    return kinds


_LIMIT = resource.getrlimit(resource.RLIMIT_STACK)[0]
# glibc's stack for a new thread: the soft limit on a stack, or 8 MiB without one
THREAD_STACK = _LIMIT if _LIMIT != resource.RLIM_INFINITY else 8 * 2**20


def floor_slope(floors_mb: list[float]) -> dict:
    """The least-squares slope of per-minute floors in MB per hour, with the two-sided 95 %
    interval from Student's t; None for each with fewer than three minutes to fit."""
    if len(floors_mb) < 3:
        return {"rss_slope_mb_per_h": None, "rss_slope_ci95_mb_per_h": None}
    fit = stats.linregress(np.arange(len(floors_mb)), floors_mb)
    half = stats.t.ppf(0.975, len(floors_mb) - 2) * fit.stderr
    return {"rss_slope_mb_per_h": round(60 * fit.slope, 3),
            "rss_slope_ci95_mb_per_h": [round(60 * (fit.slope - half), 3),
                                        round(60 * (fit.slope + half), 3)]}  # fmt: skip


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


def _inject(fault: str, app: App, model: FrameSource, watch: PresetWatch, folder: Path) -> None:
    if fault == "model" and isinstance(model, LocalSource):
        model.inject_fault()
    elif fault == "model":  # served: requests that once ended the whole server
        _poison(model.address)
    elif fault == "ffmpeg":
        if app.recorder.encoder_pid is None:
            app.record(folder / "soak.mp4")
        app.frame()  # a frame into it
        if app.recorder.encoder_pid is not None:
            os.kill(app.recorder.encoder_pid, signal.SIGKILL)
    else:
        good = watch.path.read_text()
        watch.path.write_text("[look\nglow = = 3\n")
        _touch(watch.path)
        app.poll_files(now_or_never=True)  # it sees the broken file, says so, keeps its settings
        watch.path.write_text(good)
        _touch(watch.path)


POISON = ({"temperature": 1e-40}, {"temperature": 1}, {"top_p": math.nan}, {"context": 3},
          {"max_tokens": 10**6})  # fmt: skip


def _poison(address: str) -> None:
    """From a client of its own, as any msgpack client would write them: requests that once
    ended the whole server, and bytes that are no message. Each is refused or answered; the
    kiosk's own client must not notice."""
    ctx = zmq.Context.instance()
    sock = ctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(f"tcp://{address}")
    try:
        head = {"v": wire.WIRE_VERSION}
        sock.send_multipart([msgpack.packb({**head, "type": "hello"})])
        for n, gen in enumerate(POISON, start=1):
            sock.send_multipart([msgpack.packb({**head, "type": "generate", "request": n,
                                                "prompt": "poison", "gen": gen})])  # fmt: skip
        sock.send_multipart([b"\x92\x01", b"\0" * 64])
        deadline = time.monotonic() + 2.0
        while time.monotonic() < deadline and sock.poll(100):
            sock.recv_multipart()
        sock.send_multipart([msgpack.packb({**head, "type": "bye"})])
    finally:
        sock.close()


def _touch(path: Path) -> None:
    stamp = path.stat().st_mtime + 1
    os.utime(path, (stamp, stamp))


def soak_command(minutes: float, inject_faults: bool, model: str, every_s: float,
                 served: bool = False) -> int:  # fmt: skip
    """Prints the report; exits 1 when the kiosk crashed or a fault was not survived (the last
    one may still be healing when the time is up)."""
    report = soak(minutes, inject_faults, model, every_s, min(WARM_UP_S, minutes * 15), served)
    print(json.dumps(report))
    healed = report["faults_survived"] >= report["faults_injected"] - 1 and "stuck" not in report
    return 0 if report["crashes"] == 0 and healed else 1
