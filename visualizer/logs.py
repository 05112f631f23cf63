"""One logging format for every command (serve, kiosk, soak, the rest): an event is one line,
"neuroweb: <message>" on stderr as the one-line errors are, and in a file (the kiosk's) the
same line after its time and level, for reading back what happened overnight."""

import logging

CONSOLE_FORMAT = "neuroweb: %(message)s"
FILE_FORMAT = "%(asctime)s %(levelname)s " + CONSOLE_FORMAT


def log_to_stderr(*info: str) -> None:
    """Events on stderr from here on: warnings and worse, and the INFO records of the loggers
    named in `info` (a server's "listening on …" and "serving … on …" are what its operator
    waits for). A kiosk's log sets its own loggers to INFO."""
    logging.basicConfig(format=CONSOLE_FORMAT, level=logging.WARNING)
    for name in info:
        logging.getLogger(name).setLevel(logging.INFO)
