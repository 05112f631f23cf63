"""A remote drives a talk over OSC (`neuroweb run --osc`), as show-control software would: real
UDP messages sent from the test (python-osc's client) to a real window under Xvfb change its cue,
scene and blackout; malformed or unknown ones are logged once each and ignored; a bad --osc is
one line and exit 2; the port is free again once the window is gone."""

import logging
import multiprocessing
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from multiprocessing.connection import Connection
from pathlib import Path

from pythonosc.osc_message_builder import OscMessageBuilder
from pythonosc.udp_client import SimpleUDPClient

from visualizer.cli import main
from visualizer.cues import load_cues
from visualizer.interventions import Ablation
from visualizer.render.controls import Command
from visualizer.render.remote import Remote

TALK = """\
[[cue]]
note = "The web."
scene = "web"

[[cue]]
note = "The parts."
scene = "architecture"

[[cue]]
note = "Back to the web, blacked out by hand next."
scene = "web"
"""
WAIT_S = 20.0  # a bound, not a timing: each state arrives within a frame or two


def _message(address: str, *args) -> bytes:
    built = OscMessageBuilder(address)
    for arg in args:
        built.add_arg(arg)
    return built.build().dgram


def _window_with_a_remote(folder: str, conn: Connection) -> None:
    """In its own process (a window after EGL cannot make GLX current: see test_window): a real
    window playing a recorded run, a talk's cues, a Remote on a free loopback port. Says the
    port, then the stage (cue, scene, blackout) each time it changes, until told to stop;
    then, once the remote is closed, whether its port is free and its thread gone."""
    import numpy as np

    from tests.synthetic import synthetic_frame
    from visualizer.clock import RealClock
    from visualizer.config import load_settings
    from visualizer.gl.context import WindowTarget
    from visualizer.handoff import Status
    from visualizer.render.app import App
    from visualizer.sources.player import TracePlayer

    os.chdir(folder)
    frames = [synthetic_frame(i, np.ones((3, 8)), np.ones((2, 16)),
                              np.full((2, 2, i + 1), 1 / (i + 1)), is_prompt=i < 2)
              for i in range(40)]  # fmt: skip
    show = load_cues(Path(folder) / "talk.toml")
    target = WindowTarget((320, 180), False, False, "neuroweb osc test")
    clock = RealClock()
    player = TracePlayer(frames, [i / 30 for i in range(40)], lambda: clock.now,
                         Status("generating", model="tiny")).start()  # fmt: skip
    try:
        with Remote("127.0.0.1", 0, len(show.cues)) as remote:
            conn.send(remote.port)
            app = App(load_settings("default"), target, player, clock, adaptive=False, cues=show,
                      remote=remote)  # fmt: skip
            said = None
            while not conn.poll():
                app.frame()
                stage = (show.index, app.stage.target, app.stage.blackout)
                if stage != said:
                    conn.send(stage)
                    said = stage
            app.release()
        port = remote.port
    finally:
        target.close()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as again:
        again.bind(("127.0.0.1", port))  # raises if the remote still held it
    conn.send(not any(t.name == "osc" for t in threading.enumerate()))


def test_osc_messages_step_a_real_window_s_cues_and_scene(xvfb, tmp_path):
    (tmp_path / "talk.toml").write_text(TALK, encoding="utf-8")
    mine, theirs = multiprocessing.get_context("spawn").Pipe()
    session = multiprocessing.get_context("spawn").Process(
        target=_window_with_a_remote, args=(str(tmp_path), theirs))
    session.start()
    try:
        assert mine.poll(60), "the window did not open"
        osc = SimpleUDPClient("127.0.0.1", mine.recv())

        def stage() -> tuple:
            assert mine.poll(WAIT_S), "no change"
            return mine.recv()

        assert stage() == (-1, 0.0, False)  # before the first cue
        osc.send_message("/neuroweb/next", [])
        assert stage() == (0, 0.0, False)
        osc.send_message("/neuroweb/next", [])
        assert stage() == (1, 1.0, False)  # cue 2: the architecture
        for address, args in (
            ("/neuroweb/scene", "stage"), ("/neuroweb/scene", 1), ("/neuroweb/cue", "3"),
            ("/neuroweb/cue", 9), ("/neuroweb/cue", 2.5), ("/neuroweb/next", 1),
            ("/neuroweb/blackout", [1, 1]), ("/neuroweb/bogus", []), ("/other/next", []),
            ("/neuroweb/preset", "no-such-look"),
        ):  # fmt: skip
            osc.send_message(address, args)  # each ignored: the stage stays
        osc.send_message("/neuroweb/scene", "web")
        assert stage() == (1, 0.0, False)  # the first change after them is this one's
        osc.send_message("/neuroweb/cue", 3)
        osc.send_message("/neuroweb/blackout", True)
        seen = stage()
        assert seen in ((2, 0.0, False), (2, 0.0, True))  # in one frame, or two
        if seen[2] is False:
            assert stage() == (2, 0.0, True)
        osc.send_message("/neuroweb/prev", [])
        assert stage() == (1, 1.0, True)
        mine.send("stop")
        assert mine.poll(WAIT_S) and mine.recv() is True  # the port free, the thread gone
        session.join(30)
        assert session.exitcode == 0
    finally:
        if session.is_alive():
            session.kill()


def test_each_message_becomes_a_command_and_bad_ones_are_logged_once(caplog):
    """The messages as the render loop gets them, through a real socket; every refusal is one
    warning, the same one once, and nothing reaches the queue from a bad message."""
    caplog.set_level("INFO", "neuroweb.show.osc")
    with Remote("127.0.0.1", 0, cues=3) as remote:
        osc = SimpleUDPClient("127.0.0.1", remote.port)
        good = [
            ("/neuroweb/next", [], Command("cue", 1)), ("/neuroweb/prev", [], Command("cue", -1)),
            ("/neuroweb/cue", 3, Command("go", 3)),
            ("/neuroweb/prompt", "Why is it blue?", Command("generate", "Why is it blue?")),
            ("/neuroweb/scene", "architecture", Command("scene", 1)),
            ("/neuroweb/preset", "minimal", Command("preset", "minimal")),
            ("/neuroweb/blackout", 1, Command("blackout", True)),
            ("/neuroweb/blackout", False, Command("blackout", False)),
            ("/neuroweb/record", 1, Command("recording", True)),
        ]  # fmt: skip
        bad = [
            ("/neuroweb/scene", "stage", "the scenes are web, architecture"),
            ("/neuroweb/cue", 0, "the cues are 1–3"), ("/neuroweb/cue", "2", "int"),
            ("/neuroweb/cue", True, "int"), ("/neuroweb/prompt", "", "1–4000 characters"),
            ("/neuroweb/prompt", 7, "expects a string"), ("/neuroweb/next", [1], "takes 0"),
            ("/neuroweb/record", 2, "1 (on) or 0 (off)"), ("/neuroweb/ablate", "mlp", "mlp:BLOCK"),
            ("/neuroweb/preset", "no-such-look", "no-such-look"),
            ("/neuroweb/quit", [], "unknown address '/neuroweb/quit'"),
        ]  # fmt: skip
        for address, args, _ in bad + bad:  # twice: logged once
            osc.send_message(address, args)
        for address, args, _ in good:
            osc.send_message(address, args)
        osc.send_message("/neuroweb/ablate", "mlp:1, head:0.3")
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as raw:
            for junk in (b"\x00\x01garbage", b"#bundle\x00" + bytes(8), b"/neuroweb/cue\x00\x00\x00"
                         b",q\x00\x00", _message("/neuroweb/cue", 2)[:-2]):  # fmt: skip
                raw.sendto(junk, ("127.0.0.1", remote.port))
        taken, deadline = [], time.monotonic() + WAIT_S
        while len(taken) < len(good) + 1 and time.monotonic() < deadline:
            taken += remote.take()
            time.sleep(0.01)
        time.sleep(0.05)  # anything after them (nothing should come)
        taken += remote.take()
    assert taken[:-1] == [command for _, _, command in good]
    assert taken[-1].name == "intervene"
    assert taken[-1].value.ablations == (Ablation("mlp", 1), Ablation("head", 0, 3))
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == len(bad) + 4 == len(set(warnings))
    for (address, _, said), line in zip(bad, warnings, strict=False):
        assert line.startswith("osc: ignored: ") and address in line and said in line, line
    assert sum("not an OSC message" in w for w in warnings) == 2
    assert any("bundle" in w for w in warnings) and any("unknown types ',q'" in w for w in warnings)
    assert "osc: listening on 127.0.0.1" in caplog.text


def test_a_bad_osc_address_is_one_line_and_exit_2(capsys):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
        taken.bind(("127.0.0.1", 0))
        port = taken.getsockname()[1]
        for args, said in (
            (["--osc", "nine"], "--osc nine: expected PORT or HOST:PORT"),
            (["--osc", "127.0.0.1:70000"], "--osc 127.0.0.1:70000: expected PORT or HOST:PORT"),
            (["--osc", str(port)], f"--osc 127.0.0.1:{port}: cannot listen there"),
            (["--osc", "192.0.2.1:9000"], "--osc 192.0.2.1:9000: cannot listen there"),
            (["--osc", "9000", "--headless"], "run: --osc needs the window"),
        ):
            assert main(["run", *args]) == 2
            err = capsys.readouterr().err
            assert err.startswith(f"neuroweb: {said}") and len(err.strip().splitlines()) == 1, err


def test_without_a_cue_list_the_cue_messages_are_refused(caplog):
    remote = Remote("127.0.0.1", 0, cues=0)
    try:
        for datagram in (_message("/neuroweb/next"), _message("/neuroweb/cue", 1)):
            assert remote.receive(datagram) is None
        assert remote.receive(_message("/neuroweb/scene", "web")) == Command("scene", 0)
    finally:
        remote.close()
    assert caplog.text.count("no cue list to step (run --cues TALK.toml)") == 1


def test_run_with_osc_takes_messages_and_frees_its_port_on_ctrl_c(xvfb, tiny_llama_dir, tmp_path):
    """`neuroweb run --osc PORT --cues` as a speaker starts it: the terminal says where it
    listens, /neuroweb/next runs cue 1, and Ctrl-C (SIGINT to the process group) ends it with
    130 and leaves the port free."""
    (tmp_path / "talk.toml").write_text(TALK, encoding="utf-8")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    run = subprocess.Popen([sys.executable, "-m", "visualizer", "run", "--osc", str(port),
                            "--cues", "talk.toml", "--model", str(tiny_llama_dir)],
                           cwd=tmp_path, stderr=subprocess.PIPE, text=True,
                           start_new_session=True)  # fmt: skip
    lines: queue.Queue[str] = queue.Queue()
    reader = threading.Thread(target=lambda: [lines.put(x) for x in run.stderr], daemon=True)
    reader.start()

    def until(text: str) -> None:
        deadline = time.monotonic() + WAIT_S
        while time.monotonic() < deadline:
            try:
                if text in lines.get(timeout=deadline - time.monotonic()):
                    return
            except queue.Empty:
                break
        raise AssertionError(f"never said {text!r}")

    try:
        until(f"neuroweb: osc: listening on 127.0.0.1:{port}")
        osc = SimpleUDPClient("127.0.0.1", port)
        osc.send_message("/neuroweb/next", [])
        until("neuroweb: cue 1/3")
        osc.send_message("/neuroweb/scene", "stage")
        until("neuroweb: osc: ignored: /neuroweb/scene 'stage': the scenes are web, architecture")
        os.killpg(run.pid, signal.SIGINT)
        assert run.wait(30) == 130
    finally:
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGKILL)
    reader.join(5)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as again:
        again.bind(("127.0.0.1", port))
