"""Where a model server listens and how clients reach it: addresses, the optional shared token,
and the CURVE keys (ZeroMQ's zmq.auth) that anything beyond loopback needs: the traffic is then
encrypted, and only clients whose public keys the server holds may connect.

A key folder (`--keys DIR`) as `neuroweb serve` makes it on its first start:
  server.key, server.key_secret   the server's pair (its public key is printed)
  client.key, client.key_secret   a first client's pair
  clients/client.key              the public keys of the clients allowed in (add more here)
A client is given a folder with server.key and its own client.key_secret.
"""

import ipaddress
import shutil
import socket
from dataclasses import dataclass
from pathlib import Path

import zmq
import zmq.auth

from visualizer.errors import UserError

DEFAULT_LISTEN = "127.0.0.1:7700"  # this machine only


def parse_address(text: str, flag: str) -> tuple[str, int]:
    """"HOST:PORT" → (host, port); UserError naming the flag if it is not one."""
    host, _, port = text.rpartition(":")
    host = host.strip("[]")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise UserError(f"{flag} {text}: expected HOST:PORT")
    return host, int(port)


def udp_socket(host: str, port: int, flag: str) -> socket.socket:
    """A UDP socket bound to `host`:`port` (port 0: any free one); UserError naming the flag
    if it cannot be (a port in use, an address not of this machine)."""
    sock = None
    try:
        family, kind, proto, _, where = socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM)[0]
        sock = socket.socket(family, kind, proto)
        sock.bind(where)
    except OSError as exc:
        if sock is not None:
            sock.close()
        said = exc.strerror or str(exc)
        raise UserError(f"{flag} {host}:{port}: cannot listen there ({said})") from None
    return sock


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


@dataclass(frozen=True)
class ServerKeys:
    public: bytes
    secret: bytes
    clients: Path  # the folder of allowed clients' public keys


@dataclass(frozen=True)
class ClientKeys:
    public: bytes
    secret: bytes
    server: bytes  # the server's public key


def server_keys(folder: str) -> ServerKeys:
    """The server's CURVE pair from `folder`, made there (with a first client's) if absent."""
    root = Path(folder).expanduser()
    try:
        root.mkdir(parents=True, exist_ok=True)
        if not (root / "server.key_secret").exists():
            zmq.auth.create_certificates(root, "server")
        if not (root / "clients").is_dir():
            (root / "clients").mkdir()
            zmq.auth.create_certificates(root, "client")
            shutil.copy(root / "client.key", root / "clients" / "client.key")
        public, secret = zmq.auth.load_certificate(root / "server.key_secret")
    except (OSError, ValueError) as exc:
        raise UserError(f"--keys {folder}: cannot make or read the server's keys: {exc}") from None
    if secret is None:
        raise UserError(f"--keys {folder}: server.key_secret holds no secret key")
    return ServerKeys(public, secret, root / "clients")


def client_keys(folder: str) -> ClientKeys:
    """A client's CURVE pair and the server's public key, from a folder as `server_keys`
    makes it (or a copy of server.key and client.key_secret)."""
    root = Path(folder).expanduser()
    try:
        public, secret = zmq.auth.load_certificate(root / "client.key_secret")
        server, _ = zmq.auth.load_certificate(root / "server.key")
    except (OSError, ValueError) as exc:
        raise UserError(f"--keys {folder}: needs server.key and client.key_secret: {exc}") from None
    if secret is None:
        raise UserError(f"--keys {folder}: client.key_secret holds no secret key")
    return ClientKeys(public, secret, server)


def secure_server(sock: zmq.Socket, keys: ServerKeys) -> None:
    sock.curve_secretkey, sock.curve_publickey, sock.curve_server = keys.secret, keys.public, True


def secure_client(sock: zmq.Socket, keys: ClientKeys) -> None:
    sock.curve_secretkey, sock.curve_publickey = keys.secret, keys.public
    sock.curve_serverkey = keys.server
