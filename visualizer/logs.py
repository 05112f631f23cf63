"""One logging format for every command (serve, kiosk, soak, the rest): an event is one line,
"neuroweb: <message>" on stderr as the one-line errors are, and in a file (the kiosk's) the
same line after its time and level, for reading back what happened overnight."""

import logging

CONSOLE_FORMAT = "neuroweb: %(message)s"
FILE_FORMAT = "%(asctime)s %(levelname)s " + CONSOLE_FORMAT
# what a clean picture (run --clean, a render) does not show: its notices and errors, written
# here instead (render/hud.py), and on stderr for every command
NOTICES = "neuroweb.notices"


def log_to_stderr(*info: str) -> None:
    """Events on stderr from here on: warnings and worse, and the INFO records of the loggers
    named in `info` (a server's "listening on …" and "serving … on …" are what its operator
    waits for), and always the NOTICES of a clean picture. A kiosk's log sets its own loggers
    to INFO."""
    logging.basicConfig(format=CONSOLE_FORMAT, level=logging.WARNING)
    for name in (NOTICES, *info):
        logging.getLogger(name).setLevel(logging.INFO)
