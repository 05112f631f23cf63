"""The wire between `neuroweb serve` and its clients: versioned messages over ZeroMQ (pyzmq), a
msgpack header and raw little-endian array buffers. Nothing is ever pickled: every header is
decoded by msgspec into one of the typed messages below, whose fields carry their bounds
(lengths, ranges, finiteness), and is refused with one line naming the field if it does not
fit. Network input is hostile.

Transport: the server binds a ROUTER socket, a client connects a DEALER. A message is one
ZeroMQ multipart message: part 0 is a msgpack map, the header; parts 1… are the buffers of
the arrays the header lists, in order. Every header has "v" (WIRE_VERSION) and "type".

Client → server: Hello, Generate, Intervene, Cancel, Ping (every PING_S; the reply is a
status), Credit (a lossless client's room for n more frames), Bye.
Server → client: StatusMessage (with the architecture and config once per session), FrameMessage
+ one buffer per array, FailureMessage (a request failed: bad input, or a bug; the server goes
on), Busy (another client's answer is running), ErrorMessage (a message was refused: its code
says why; nothing crashes).

Frame arrays: hidden, mlp, mlp_write, experts, attn, attn_sink ("<f2" where the values fit
float16 at that detail, else "<f4"), lens_probs ("<f4"), topk_ids ("<i8"), topk_probs ("<f4"),
lens_ids ("<i4"); with a ghost, "ghost.topk_ids", "ghost.topk_probs", "ghost.lens_ids",
"ghost.lens_probs". At the compact detail, hidden and mlp_write travel as "|i1" with a
"<name>.scale" ("<f4", one per row): value = int8 × scale, decoded to float32.
"""

import json
import math
import typing
from typing import Annotated, Any, Literal

import msgspec
import numpy as np
from msgspec import Meta

from visualizer.architecture import Architecture
from visualizer.config import GenerationSettings, explain
from visualizer.detail import Detail
from visualizer.errors import UserError
from visualizer.frame import Frame, Ghost
from visualizer.handoff import Status
from visualizer.interventions import Interventions, interventions_from

WIRE_VERSION = 2  # 2: msgspec-typed messages; failures and busy name their request
PING_S = 1.0
SERVER_STOPPING = "the server stopped during this answer"  # its last status of a cut answer
MAX_CLIENT_MESSAGE = 256 * 1024  # bytes: a prompt, sampling settings, a token
MAX_HEADER = 1 << 20  # bytes of a frame's or status's header (texts; an architecture)
MAX_STATUS = 8 << 20  # a status with the architecture and config of a 4096-block model
MAX_DIMS, MAX_DIM = 4, 1 << 24
MAX_BLOCKS = 4096
MAX_TEXT = 4096  # characters of one token's text, a message, a model's name
MAX_PROMPT = 64 * 1024  # characters
MAX_CANDIDATES = 1000  # next-token candidates per frame (capture.candidates' bound)
DTYPES = {"<f4": np.float32, "<f2": np.float16, "<i8": np.int64, "<i4": np.int32,
          "|i1": np.int8}  # fmt: skip
FRAME_ARRAYS = ("hidden", "mlp", "mlp_write", "experts", "attn", "attn_sink", "topk_ids",
                "topk_probs", "lens_ids", "lens_probs")  # fmt: skip
GHOST_ARRAYS = ("topk_ids", "topk_probs", "lens_ids", "lens_probs")
QUANTIZED = ("hidden", "mlp_write")
FLOAT16_MAX = float(np.finfo(np.float16).max)  # 65504: beyond it a float16 is inf

Text = Annotated[str, Meta(max_length=MAX_TEXT)]
Token = Annotated[str, Meta(max_length=1024)]
Request = Annotated[int, Meta(ge=0, le=2**62)]


class WireError(Exception):
    """A message that must be refused; `code` says why ("version", "auth", "schema", "size")."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class _Message(msgspec.Struct, frozen=True, forbid_unknown_fields=True, tag_field="type",
               kw_only=True):  # fmt: skip
    v: int = WIRE_VERSION


# --- client → server ----------------------------------------------------------------------------


class InterventionsSpec(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Interventions as the command line spells them; parsed by interventions_from."""

    ablate: Annotated[tuple[Annotated[str, Meta(max_length=64)], ...], Meta(max_length=64)] = ()
    steer: Annotated[tuple[Text, ...], Meta(max_length=8)] = ()
    ghost: bool = True


class Hello(_Message, tag="hello", kw_only=True):
    token: Token = ""
    detail: Detail = Detail()
    lossless: bool = False
    credit: Annotated[int, Meta(ge=0, le=4096)] = 0


class Generate(_Message, tag="generate", kw_only=True):
    token: Token = ""
    request: Request
    prompt: Annotated[str, Meta(max_length=MAX_PROMPT)]
    gen: GenerationSettings = GenerationSettings()
    detail: Detail | None = None  # this answer's own (a trace's), else the hello's
    interventions: InterventionsSpec | None = None


class Intervene(_Message, tag="intervene", kw_only=True):
    token: Token = ""
    interventions: InterventionsSpec


class Cancel(_Message, tag="cancel", kw_only=True):
    token: Token = ""


class Ping(_Message, tag="ping", kw_only=True):
    token: Token = ""


class Credit(_Message, tag="credit", kw_only=True):
    token: Token = ""
    n: Annotated[int, Meta(ge=1, le=4096)]


class Bye(_Message, tag="bye", kw_only=True):
    token: Token = ""


ClientMessage = Hello | Generate | Intervene | Cancel | Ping | Credit | Bye

# --- server → client ----------------------------------------------------------------------------

State = Literal["starting", "loading", "ready", "generating", "finished", "stopped"]


class StatusBody(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    state: State
    message: Text = ""
    progress: Annotated[float, Meta(ge=0, le=1)] = 0.0
    request: Request = 0
    model: Text = ""
    prompt: Annotated[str, Meta(max_length=MAX_PROMPT)] = ""
    architecture: dict[str, Any] | None = None  # inspect's JSON, checked by _ArchitectureSize
    config: Annotated[str, Meta(max_length=MAX_HEADER)] | None = None  # JSON text: int keys


class StatusMessage(_Message, tag="status", kw_only=True):
    server: Annotated[str, Meta(max_length=64)]
    status: StatusBody


class ArraySpec(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    name: Annotated[str, Meta(max_length=32)]
    dtype: Literal["<f4", "<f2", "<i8", "<i4", "|i1"]
    shape: Annotated[tuple[Annotated[int, Meta(ge=0, le=MAX_DIM)], ...], Meta(max_length=MAX_DIMS)]


Texts = Annotated[tuple[Token, ...], Meta(max_length=MAX_CANDIDATES)]
Entropy = Annotated[float, Meta(ge=0, le=100)]  # nats: ln of a 10^43-word vocabulary


class GhostHeader(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    token_id: Annotated[int, Meta(ge=0, le=2**40)]
    text: Token
    topk_text: Texts
    entropy: Entropy
    lens_text: Annotated[tuple[Token, ...], Meta(max_length=MAX_BLOCKS + 1)]


class FrameMessage(_Message, tag="frame", kw_only=True):
    seq: Request
    request: Request
    index: Annotated[int, Meta(ge=0, le=2**40)]
    token_id: Annotated[int, Meta(ge=0, le=2**40)]
    text: Token
    is_prompt: bool
    context_start: Annotated[int, Meta(ge=0, le=2**40)]
    topk_text: Texts
    entropy: Entropy
    lens_text: Annotated[tuple[Token, ...], Meta(max_length=MAX_BLOCKS + 1)]
    changed: Annotated[tuple[Text, ...], Meta(max_length=80)] = ()
    ghost: GhostHeader | None = None
    arrays: Annotated[tuple[ArraySpec, ...], Meta(max_length=16)]


class FailureMessage(_Message, tag="failure", kw_only=True):
    message: Text
    user_error: bool
    request: Request = 0


class Busy(_Message, tag="busy", kw_only=True):
    message: Text
    request: Request = 0


class ErrorMessage(_Message, tag="error", kw_only=True):
    code: Literal["version", "auth", "schema", "size", "internal"]
    message: Text


ServerMessage = StatusMessage | FrameMessage | FailureMessage | Busy | ErrorMessage


_TAGS = {cls.__struct_config__.tag: cls for cls in (*typing.get_args(ClientMessage),
                                                     *typing.get_args(ServerMessage))}


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


# --- interventions ------------------------------------------------------------------------------


def interventions_to(interventions: Interventions, ghost: bool) -> InterventionsSpec:
    return InterventionsSpec(tuple(a.spec for a in interventions.ablations),
                             tuple(s.spec for s in interventions.steering), ghost)  # fmt: skip


def interventions_of(spec: InterventionsSpec) -> tuple[Interventions, bool]:
    """A request's interventions, each spelling checked as the command line checks it."""
    try:
        return interventions_from(spec.ablate, spec.steer, "interventions."), spec.ghost
    except UserError as exc:
        raise WireError("schema", str(exc)) from None


# --- statuses -----------------------------------------------------------------------------------


class _Count(msgspec.Struct, frozen=True):
    value: Annotated[int, Meta(ge=0, le=1 << 26)] | None = None


class _BlockSize(msgspec.Struct, frozen=True):
    heads: _Count = _Count()
    kv_heads: _Count = _Count()
    head_dim: _Count = _Count()
    window: _Count = _Count()


class _ArchitectureSize(msgspec.Struct, frozen=True):
    """The facts of an architecture that size what a client allocates, with their ranges; the
    rest is read by Architecture.from_json."""

    blocks: _Count = _Count()
    width: _Count = _Count()
    vocab: _Count = _Count()
    context: _Count = _Count()
    block: Annotated[tuple[_BlockSize, ...], Meta(max_length=MAX_BLOCKS)] = ()


def status_to(status: Status, described: bool) -> StatusBody:
    """`described`: with the architecture and config (once per session: they are large)."""
    arch = config = None
    if described and status.architecture is not None:
        arch = status.architecture.to_json()
        config = json.dumps(status.config)
    return StatusBody(status.state, status.message[:MAX_TEXT], min(max(status.progress, 0), 1),
                      status.request, status.model[:MAX_TEXT], status.prompt, arch,
                      config)  # fmt: skip


def status_from(body: StatusBody, known: Status | None) -> Status:
    """A status from the server; what it leaves out (architecture, config) is `known`'s."""
    arch = known.architecture if known is not None else None
    config = known.config if known is not None else None
    if body.architecture is not None:
        try:
            sizes = msgspec.convert(body.architecture, _ArchitectureSize)
        except msgspec.ValidationError as exc:
            raise WireError("schema", f"status: architecture.{explain(exc)[0]}") from None
        if sizes.blocks.value is None or sizes.blocks.value > MAX_BLOCKS or (
                len(sizes.block) != sizes.blocks.value):  # fmt: skip
            raise WireError("schema", f"status: architecture: blocks must be 0..{MAX_BLOCKS}, "
                                      "one description each")  # fmt: skip
        try:
            arch = Architecture.from_json(body.architecture)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise WireError("schema", f"status: architecture: {exc}") from None
        try:
            config = json.loads(body.config or "null")
        except json.JSONDecodeError as exc:
            raise WireError("schema", f"status: config: {exc}") from None
    return Status(body.state, body.message, body.progress, body.request, body.model, arch,
                  body.prompt, config)  # fmt: skip


def frame_limit(arch: Architecture | None, detail: Detail, context: int) -> int:
    """The most bytes one frame of `arch` at `detail` can take on the wire (a client's receive
    limit): every array at its widest element, and the header's own ceiling."""
    if arch is None or arch.width is None:
        return MAX_STATUS
    blocks, width = arch.blocks, arch.width
    heads = max((b.heads or 0 for b in arch.block), default=0) or width
    mlp = detail.nodes or max((b.mlp.width or 0 for b in arch.block), default=0) or 8 * width
    experts = max((b.mlp.experts for b in arch.block), default=0)
    span = detail.attention + 1 if detail.attention else context
    elements = ((blocks + 1) * width + blocks * (mlp + width + experts + heads * (span + 1))
                + 2 * (blocks + 1) * 20 + 3 * MAX_CANDIDATES)  # lens rows of ≤ 20, top-k
    return 2 * 8 * elements + MAX_HEADER  # × 2: a ghost's arrays; 8: the widest element


# --- frames -------------------------------------------------------------------------------------


def frame_to(frame: Frame, seq: int, request: int, detail: Detail) -> list[bytes]:
    """A frame as a message: its scalars in the header, its arrays as little-endian buffers.
    A float array goes as float16 only where the detail asks for it and every value fits."""
    arrays, buffers = [], []

    def add(name: str, array: np.ndarray, dtype: str) -> None:
        data = np.ascontiguousarray(array, DTYPES[dtype])
        arrays.append(ArraySpec(name, dtype, data.shape))
        buffers.append(data.astype(data.dtype.newbyteorder("<"), copy=False).tobytes())

    def floats(array: np.ndarray) -> str:
        fits = detail.dtype == "float16" and not np.abs(array).max(initial=0) > FLOAT16_MAX
        return "<f2" if fits else "<f4"

    for name in FRAME_ARRAYS:
        value = getattr(frame, name)
        if detail.quantize and name in QUANTIZED:
            values = value.astype(np.float32)
            scale = np.abs(values).max(axis=-1, keepdims=True) / 127.0
            scale[scale == 0] = 1.0
            add(name, np.round(values / scale), "|i1")
            add(f"{name}.scale", scale[..., 0], "<f4")
        else:
            add(name, value, _KINDS.get(name) or floats(value))
    ghost = None
    g = frame.ghost
    if g is not None:
        for name in GHOST_ARRAYS:
            add(f"ghost.{name}", getattr(g, name), _KINDS[name])
        ghost = GhostHeader(g.token_id, g.text, g.topk_text, g.entropy, g.lens_text)
    header = FrameMessage(seq=seq, request=request, index=frame.index, token_id=frame.token_id,
                          text=frame.text, is_prompt=frame.is_prompt,
                          context_start=frame.context_start, topk_text=frame.topk_text,
                          entropy=frame.entropy, lens_text=frame.lens_text,
                          changed=frame.changed, ghost=ghost, arrays=tuple(arrays))  # fmt: skip
    return pack(header, buffers)


# probabilities stay float32 at every detail: in float16 0.9999 is 1.0, printed "100%"
_KINDS = {"topk_ids": "<i8", "topk_probs": "<f4", "lens_ids": "<i4", "lens_probs": "<f4"}


def frame_from(header: FrameMessage, buffers: list[bytes]) -> Frame:
    """A frame from a message, every declared shape and size checked against what came, and
    every number finite."""
    if len(header.arrays) != len(buffers):
        raise WireError("schema", f"frame: {len(header.arrays)} arrays declared, "
                                  f"{len(buffers)} sent")  # fmt: skip
    arrays: dict[str, np.ndarray] = {}
    for spec, buffer in zip(header.arrays, buffers, strict=True):
        if spec.name in arrays:
            raise WireError("schema", f"frame: {spec.name} twice")
        size = math.prod(spec.shape) * np.dtype(DTYPES[spec.dtype]).itemsize
        if size != len(buffer):
            raise WireError("size", f"frame: {spec.name} declares {size:,} bytes, "
                                    f"{len(buffer):,} came")  # fmt: skip
        data = np.frombuffer(buffer, np.dtype(DTYPES[spec.dtype]).newbyteorder("<"))
        arrays[spec.name] = data.reshape(spec.shape).astype(DTYPES[spec.dtype], copy=False)
    for name in QUANTIZED:  # int8 rows back to float32, with their scales
        if f"{name}.scale" in arrays:
            scale, values = arrays.pop(f"{name}.scale"), arrays.get(name)
            if values is None or values.dtype != np.int8 or scale.shape != values.shape[:-1]:
                raise WireError("schema", f"frame: {name}.scale does not fit {name}")
            arrays[name] = values.astype(np.float32) * scale[..., None]
    ghostly = GHOST_ARRAYS if header.ghost is not None else ()
    missing = [n for n in (*FRAME_ARRAYS, *(f"ghost.{n}" for n in ghostly)) if n not in arrays]
    if missing:
        raise WireError("schema", f"frame: no {', '.join(missing)}")
    unknown = set(arrays) - set(FRAME_ARRAYS) - {f"ghost.{n}" for n in GHOST_ARRAYS}
    if unknown:
        raise WireError("schema", f"frame: unknown arrays {', '.join(sorted(unknown))}")
    a = arrays
    for name, value in a.items():
        if value.dtype.kind == "f" and not np.isfinite(value).all():
            raise WireError("schema", f"frame: {name} holds a value that is not finite")
        if value.dtype.kind != ("i" if name.endswith("_ids") else "f"):
            raise WireError("schema", f"frame: {name} is of the wrong kind ({value.dtype})")
    layers = a["mlp"].shape[0] if a["mlp"].ndim == 2 else -1
    shapes_ok = (a["hidden"].ndim == 2 and a["hidden"].shape[0] == layers + 1
                 and a["mlp_write"].shape == (layers, a["hidden"].shape[1])
                 and a["experts"].ndim == 2 and a["experts"].shape[0] == layers
                 and a["attn"].ndim == 3 and a["attn"].shape[0] == layers
                 and a["attn_sink"].shape == a["attn"].shape[:2]
                 and a["topk_ids"].ndim == 1
                 and a["topk_probs"].shape == a["topk_ids"].shape
                 and a["lens_ids"].ndim == 2 and a["lens_ids"].shape[0] == layers + 1
                 and a["lens_probs"].shape == a["lens_ids"].shape)  # fmt: skip
    if not shapes_ok:
        raise WireError("schema", "frame: the arrays' shapes do not fit together")
    if len(header.topk_text) != len(a["topk_ids"]) or len(header.lens_text) != layers + 1:
        raise WireError("schema", "frame: topk_text or lens_text does not match its arrays")
    start, index = header.context_start, header.index
    if not start <= index or a["attn"].shape[-1] > index - start + 1:
        raise WireError("schema", "frame: positions out of order")
    return Frame(
        index=index, token_id=header.token_id, text=header.text, is_prompt=header.is_prompt,
        context_start=start, hidden=a["hidden"], mlp=a["mlp"], mlp_write=a["mlp_write"],
        experts=a["experts"], attn=a["attn"], attn_sink=a["attn_sink"],
        topk_ids=a["topk_ids"], topk_probs=a["topk_probs"], topk_text=header.topk_text,
        entropy=header.entropy, lens_ids=a["lens_ids"], lens_probs=a["lens_probs"],
        lens_text=header.lens_text, changed=header.changed, ghost=_ghost(header, a),
    )  # fmt: skip


def _ghost(header: FrameMessage, a: dict) -> Ghost | None:
    g = header.ghost
    if g is None:
        return None
    arrays = {n: a[f"ghost.{n}"] for n in GHOST_ARRAYS}
    if (arrays["topk_ids"].shape != a["topk_ids"].shape
            or arrays["topk_probs"].shape != a["topk_ids"].shape
            or arrays["lens_ids"].shape != a["lens_ids"].shape
            or arrays["lens_probs"].shape != a["lens_ids"].shape
            or len(g.topk_text) != len(arrays["topk_ids"])
            or len(g.lens_text) != len(header.lens_text)):  # fmt: skip
        raise WireError("schema", "frame: the ghost's arrays do not fit the frame's")
    return Ghost(
        token_id=g.token_id, text=g.text, topk_ids=arrays["topk_ids"],
        topk_probs=arrays["topk_probs"], topk_text=g.topk_text, entropy=g.entropy,
        lens_ids=arrays["lens_ids"], lens_probs=arrays["lens_probs"], lens_text=g.lens_text,
    )  # fmt: skip


def frame_bytes(parts: list[bytes]) -> int:
    return sum(len(p) for p in parts)
