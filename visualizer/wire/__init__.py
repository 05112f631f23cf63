"""The wire between `neuroweb serve` and its clients: versioned messages over ZeroMQ (pyzmq), a
msgpack header and raw little-endian array buffers. Nothing is ever pickled: every header is
decoded by msgspec into one of the typed messages (messages.py), whose fields carry their bounds
(lengths, ranges, finiteness), and is refused with one line naming the field if it does not
fit. Network input is hostile.

Transport: the server binds a ROUTER socket, a client connects a DEALER. A message is one
ZeroMQ multipart message: part 0 is a msgpack map, the header; parts 1… are the buffers of
the arrays the header lists, in order. Every header has "v" (WIRE_VERSION) and "type".

Client → server: Hello (with `watch`: a viewer, sent every answer and asking for none),
Generate, Intervene, Cancel, Ping (every PING_S; the reply is a status), Credit (a lossless
client's room for n more frames), Bye.
Server → client: StatusMessage (with the architecture and config once per session), FrameMessage
+ one buffer per array, FailureMessage (a request failed: bad input, or a bug; the server goes
on), Busy (another client's answer is running), ErrorMessage (a message was refused: its code
says why, "viewer" for a viewer that asked; nothing crashes).

Frame arrays: hidden, mlp, mlp_write, experts, attn, attn_sink ("<f2" where the values fit
float16 at that detail, else "<f4"), lens_probs ("<f4"), topk_ids ("<i8"), topk_probs ("<f4"),
lens_ids ("<i4"); with a ghost, "ghost.topk_ids", "ghost.topk_probs", "ghost.lens_ids",
"ghost.lens_probs". At the compact detail, hidden and mlp_write travel as "|i1" with a
"<name>.scale" ("<f4", one per row): value = int8 × scale, decoded to float32.

One job a module: `messages.py` the messages and their bounds, `codec.py` messages to parts
and back (pack, unpack), `frames.py` a Frame's compact packing, `convert.py` interventions and
statuses, `limits.py` the ceilings and a frame's size from the model's architecture.
"""

from visualizer.wire.codec import pack, unpack
from visualizer.wire.convert import interventions_of, interventions_to, status_from, status_to
from visualizer.wire.frames import QUANTIZED, frame_bytes, frame_from, frame_to
from visualizer.wire.limits import MAX_CLIENT_MESSAGE, MAX_HEADER, MAX_STATUS, MAX_TEXT, frame_limit
from visualizer.wire.messages import (
    PING_S,
    SERVER_STOPPING,
    WIRE_VERSION,
    Busy,
    Bye,
    Cancel,
    ClientMessage,
    Credit,
    ErrorMessage,
    FailureMessage,
    FrameMessage,
    Generate,
    Hello,
    Intervene,
    InterventionsSpec,
    Ping,
    ServerMessage,
    StatusBody,
    StatusMessage,
    WireError,
    _Message,
)

__all__ = [
    "MAX_CLIENT_MESSAGE", "MAX_HEADER", "MAX_STATUS", "MAX_TEXT", "PING_S", "QUANTIZED",
    "SERVER_STOPPING", "WIRE_VERSION", "Busy", "Bye", "Cancel", "ClientMessage", "Credit",
    "ErrorMessage", "FailureMessage", "FrameMessage", "Generate", "Hello", "Intervene",
    "InterventionsSpec", "Ping", "ServerMessage", "StatusBody", "StatusMessage", "WireError",
    "_Message", "frame_bytes", "frame_from", "frame_limit", "frame_to", "interventions_of",
    "interventions_to", "pack", "status_from", "status_to", "unpack",
]  # fmt: skip
