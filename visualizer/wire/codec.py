"""Messages to ZeroMQ parts and back: part 0 the msgpack header, then the raw buffers it
lists. Nothing is ever pickled; a header is decoded straight into its typed message, and what
does not fit (too big, not msgpack, another version, a field out of bounds) is a WireError."""

import typing
from typing import Any

import msgspec

from visualizer.config import explain
from visualizer.wire.limits import MAX_STATUS
from visualizer.wire.messages import (
    WIRE_VERSION,
    ClientMessage,
    ServerMessage,
    WireError,
    _Message,
)

_TAGS = {
    cls.__struct_config__.tag: cls
    for cls in (*typing.get_args(ClientMessage), *typing.get_args(ServerMessage))
}


class _Envelope(msgspec.Struct):
    """What is read before the type: the version (another version's fields may differ)."""

    v: Any = None
    type: Any = None


_encoder = msgspec.msgpack.Encoder()
_envelope = msgspec.msgpack.Decoder(_Envelope)
_decoders = {ClientMessage: msgspec.msgpack.Decoder(ClientMessage),
             ServerMessage: msgspec.msgpack.Decoder(ServerMessage)}  # fmt: skip


def pack(message: _Message, buffers: list[bytes] | None = None) -> list[bytes]:
    return [_encoder.encode(message), *(buffers or [])]


def unpack(parts: list[bytes], limit: int, kind: Any = ClientMessage) -> tuple[Any, list[bytes]]:
    """The typed message and buffers of `parts` (`kind`: ClientMessage or ServerMessage);
    WireError if it is too big, not msgpack, of another version, or does not fit its type."""
    if not parts:
        raise WireError("schema", "an empty message")
    size = sum(len(p) for p in parts)
    if size > limit or len(parts[0]) > MAX_STATUS:
        raise WireError("size", f"a message of {size:,} bytes")
    try:
        envelope = _envelope.decode(parts[0])
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise WireError("schema", f"not a msgpack header: {exc}") from None
    if envelope.v != WIRE_VERSION:
        raise WireError("version", f"wire version {envelope.v!r}; this speaks {WIRE_VERSION}")
    try:
        return _decoders[kind].decode(parts[0]), list(parts[1:])
    except msgspec.ValidationError as exc:
        root = _TAGS.get(envelope.type) if isinstance(envelope.type, str) else None
        if root not in typing.get_args(kind):
            raise WireError("schema", f"unknown message type {str(envelope.type)[:32]!r}") from None
        raise WireError("schema", f"{envelope.type}: {explain(exc, root=root)[0]}") from None
    except msgspec.DecodeError as exc:
        raise WireError("schema", f"not a msgpack header: {exc}") from None
