"""CURVE on `neuroweb serve`'s socket (network.py makes and reads the keys): it binds to
loopback by default, and any other address needs keys (--keys DIR). The traffic is then
encrypted and only clients whose public keys are in DIR/clients are let in, checked in the
handshake by zmq.auth's authenticator."""

import logging

import zmq
from zmq.auth.thread import ThreadAuthenticator

from visualizer.errors import UserError
from visualizer.network import ServerKeys, is_loopback, secure_server, server_keys

log = logging.getLogger("neuroweb.serve")


def keys_for(host: str, listen: str, keys_dir: str | None) -> ServerKeys | None:
    """The server's keys from `keys_dir` (made there on the first start); None on loopback
    without it. Any other address without keys is refused: its traffic would be readable."""
    if not is_loopback(host) and not keys_dir:
        raise UserError(f"serve: --listen {listen} is reachable from other machines: give "
                        "--keys DIR (CURVE keys: encrypted, only known clients) or listen on "
                        "127.0.0.1")  # fmt: skip
    return server_keys(keys_dir) if keys_dir else None


def guard(ctx: zmq.Context, router: zmq.Socket, keys: ServerKeys) -> ThreadAuthenticator:
    """Encrypts `router` with the server's keys and starts the authenticator that lets in only
    the clients whose public keys it holds; stop() it when the socket is closed."""
    authenticator = ThreadAuthenticator(ctx, log=log)
    authenticator.start()
    authenticator.configure_curve(domain="*", location=str(keys.clients))
    secure_server(router, keys)
    return authenticator


def announce(keys: ServerKeys, keys_dir: str) -> None:
    """The public key and what a client needs, for the operator to read on the console."""
    log.info("CURVE on; public key %s; clients need %s/server.key and a client.key_secret "
             "whose public key is in %s", keys.public.decode(), keys_dir, keys.clients)  # fmt: skip
