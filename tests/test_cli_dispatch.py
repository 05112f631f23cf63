"""Each sub-command names the function that runs it; main calls that and maps its errors to one
line and an exit status; events are logged in one format, on stderr and in the kiosk's file."""

import logging
import re
import subprocess
import sys

import pytest

from visualizer import cli
from visualizer.errors import Unreachable, UserError

COMMANDS = {  # a command and the least it must be given
    "run": [], "trace": ["--prompt", "x", "--out", "a.npz"],
    "render": ["--prompt", "x", "--out", "a.mp4"], "snapshot": ["--prompt", "x", "--out", "a.png"],
    "recover": [], "inspect": [], "kiosk": [], "serve": [], "soak": ["--minutes", "1"],
    "film": ["--out", "a.mp4"], "calibrate": [], "bench": [],
}  # fmt: skip
FINISH_ON_SIGTERM = {"run", "trace", "render", "snapshot", "kiosk", "film"}  # what they write: kept
INFO = {"run": ("neuroweb.show",), "serve": ("neuroweb.serve",)}  # loggers said at INFO level


@pytest.mark.parametrize("name", COMMANDS)
def test_each_sub_parser_names_its_function(name):
    args = cli.build_parser().parse_args([name, *COMMANDS[name]])
    assert args.func is getattr(cli, f"_{name}")
    assert args.like_ctrl_c == (name in FINISH_ON_SIGTERM)
    assert args.info == INFO.get(name, ())


def test_every_sub_command_is_listed_here():
    usage = cli.build_parser().format_usage()
    assert re.search(r"\{(.*)\}", usage)[1].split(",") == list(COMMANDS)


@pytest.mark.parametrize("raised, status, said", [
    (None, 7, ""),
    (UserError("bench: --tokens: no"), 2, "neuroweb: bench: --tokens: no\n"),
    (Unreachable("no answer from x"), 1, "neuroweb: no answer from x\n"),
])  # fmt: skip
def test_main_runs_the_named_function_and_says_its_error_in_one_line(
    monkeypatch, capsys, raised, status, said
):
    def bench(args):
        if raised is not None:
            raise raised
        return 7 if args.tokens == 3 else 0

    monkeypatch.setattr(cli, "_bench", bench)
    assert cli.main(["bench", "--tokens", "3"]) == status
    assert capsys.readouterr().err == said


def test_serve_shows_its_info_records_on_stderr():
    """`neuroweb serve` says "listening on …", "serving … on …" as INFO records of
    neuroweb.serve; its stderr shows them, and warnings of any logger, in the console format."""
    script = (
        "import logging, sys\n"
        "from visualizer import cli, server\n"
        "def serve(settings, listen, *rest):\n"
        "    logging.getLogger('neuroweb.serve').info('listening on %s', listen)\n"
        "    logging.getLogger('neuroweb.remote').info('not for a server console')\n"
        "    logging.getLogger('neuroweb.remote').warning('a warning')\n"
        "    return 0\n"
        "server.serve_command = serve\n"
        "sys.exit(cli.main(['serve', '--listen', '127.0.0.1:5999']))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stderr.splitlines() == ["neuroweb: listening on 127.0.0.1:5999",
                                        "neuroweb: a warning"]  # fmt: skip


def test_the_kiosk_file_has_the_console_line_after_its_time_and_level(tmp_path):
    from visualizer.config import KioskSettings
    from visualizer.kiosk import kiosk_log

    path, neuroweb = tmp_path / "kiosk.log", logging.getLogger("neuroweb")
    level = neuroweb.level
    log = kiosk_log(KioskSettings(log_file=str(path)))
    try:
        log.info("prompt: %s", "hello")
        logging.getLogger("neuroweb.remote").warning("server lost")
    finally:  # as it was for the tests after this one
        for handler in list(neuroweb.handlers):
            neuroweb.removeHandler(handler)
            handler.close()
        neuroweb.setLevel(level)
    stamp = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}"
    lines = path.read_text().splitlines()
    assert re.fullmatch(rf"{stamp} INFO neuroweb: prompt: hello", lines[0]), lines
    assert re.fullmatch(rf"{stamp} WARNING neuroweb: server lost", lines[1]), lines
