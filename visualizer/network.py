"""Where a model server listens and how clients reach it: addresses, and the shared token that
anything beyond loopback needs."""

import ipaddress
from pathlib import Path

from visualizer.errors import UserError

DEFAULT_LISTEN = "127.0.0.1:7700"  # this machine only


def parse_address(text: str, flag: str) -> tuple[str, int]:
    """"HOST:PORT" → (host, port); UserError naming the flag if it is not one."""
    host, _, port = text.rpartition(":")
    host = host.strip("[]")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise UserError(f"{flag} {text}: expected HOST:PORT")
    return host, int(port)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def read_token(path: str, flag: str = "--token-file") -> str:
    try:
        token = Path(path).read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"{flag} {path}: cannot read it: {exc}") from None
    if len(token) < 16:
        raise UserError(f"{flag} {path}: the token must be at least 16 characters")
    return token
