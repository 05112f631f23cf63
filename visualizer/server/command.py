"""`neuroweb serve` as a command: the address, token and keys checked, the server run until
Ctrl-C or SIGTERM, and its events (serving, the public key, the count of answers, why it
ended) logged to "neuroweb.serve", whose INFO records the command line shows."""

import logging
import signal

from visualizer.config import Settings
from visualizer.network import parse_address, read_token
from visualizer.server.curve import announce, keys_for
from visualizer.server.network_thread import Server

log = logging.getLogger("neuroweb.serve")


def serve_command(settings: Settings, listen: str, device_map: str | None, dtype: str,
                  token_file: str | None, keys_dir: str | None = None) -> int:  # fmt: skip
    """Serve until Ctrl-C or SIGTERM (exit 0 then; 1 if the model could not go on)."""
    host, port = parse_address(listen, "--listen")
    token = read_token(token_file) if token_file else None
    keys = keys_for(host, listen, keys_dir)
    server = Server(settings, host, port, token, device_map, dtype, keys)
    signal.signal(signal.SIGTERM, lambda signum, frame: server.stop())
    if keys is not None:
        announce(keys, keys_dir)
    log.info("listening on %s (loading the model)", server.address)
    try:
        server.run()
    except KeyboardInterrupt:
        server.stop()
    model = server.model
    log.info("served %d answers, %d failed; refused %d messages", model.answers, model.failed,
             server.refused)  # fmt: skip
    if model.gone is not None:
        log.error("serve: %s", model.gone)
    return server.exit_status
