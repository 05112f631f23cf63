"""The wire between `neuroweb serve` and its clients: versioned messages over ZeroMQ (pyzmq), a
msgpack header and raw little-endian array buffers. Nothing is ever pickled, and every message
is checked for size and schema before anything in it is used: network input is hostile.

Transport: the server binds a ROUTER socket, a client connects a DEALER. A message is one
ZeroMQ multipart message: part 0 is a msgpack map, the header; parts 1… are the buffers of
the arrays the header lists, in order.

Every header has "v" (WIRE_VERSION) and "type". Client → server (header only):
  hello     {token, detail, lossless}     opens a session; the reply is a status
  generate  {token, request, prompt, gen, one answer at a time: another client gets "busy";
             detail?, interventions?}     detail: this answer's, else the hello's;
                                          interventions: {ablate, steer, ghost}
  intervene {token, interventions}        changes the running answer from its next token
  cancel    {token}                       stops this client's answer
  ping      {token}                       every PING_S; the reply is a status (liveness)
  credit    {token, n}                    a lossless client's room for n more frames
  bye       {token}                       the client is going: its answer is cancelled
Server → client:
  status    {server, status}              status: state, message, progress, request, model,
                                          prompt; with "architecture" (inspect's JSON) and
                                          "config" once per session
  frame     {seq, request, index, token_id, text, is_prompt, context_start, topk_text,
             entropy, lens_text, changed, ghost?: {token_id, text, topk_text, entropy,
             lens_text}, arrays: [{name, dtype, shape}]} + one buffer per array
  failure   {message, user_error}         the model failed (bad input, or a bug)
  busy      {message}                     another client's answer is running
  error     {code, message}               the message was refused: code "version", "auth",
                                          "schema", "size"; it is dropped, nothing crashes
Frame arrays: hidden, mlp, mlp_write, experts, attn, attn_sink ("<f2" or "<f4"), lens_probs ("<f4"),
topk_ids ("<i8"), topk_probs ("<f4"), lens_ids ("<i4"); with a ghost, "ghost.topk_ids",
"ghost.topk_probs", "ghost.lens_ids", "ghost.lens_probs". At the compact detail, hidden and
mlp_write travel as "|i1" with a "<name>.scale" ("<f4", one per row): value = int8 × scale.
"""

import json
import math
from dataclasses import asdict, fields

import msgpack
import numpy as np

from visualizer.architecture import Architecture
from visualizer.config import GenerationSettings
from visualizer.detail import Detail
from visualizer.errors import UserError
from visualizer.frame import Frame, Ghost
from visualizer.handoff import Status
from visualizer.interventions import Interventions, interventions_from

WIRE_VERSION = 1
PING_S = 1.0
MAX_CLIENT_MESSAGE = 256 * 1024  # bytes: a prompt, sampling settings, a token
MAX_FRAME_BYTES = 256 * 1024 * 1024  # one frame of a very large model at full detail
MAX_DIMS, MAX_DIM = 4, 1 << 24
DTYPES = {"<f4": np.float32, "<f2": np.float16, "<i8": np.int64, "<i4": np.int32,
          "|i1": np.int8}  # fmt: skip
FRAME_ARRAYS = ("hidden", "mlp", "mlp_write", "experts", "attn", "attn_sink", "topk_ids",
                "topk_probs", "lens_ids", "lens_probs")  # fmt: skip
GHOST_ARRAYS = ("topk_ids", "topk_probs", "lens_ids", "lens_probs")
QUANTIZED = ("hidden", "mlp_write")


class WireError(Exception):
    """A message that must be refused; `code` says why ("version", "auth", "schema", "size")."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


# --- headers ------------------------------------------------------------------------------------


def pack(header: dict, buffers: list[bytes] | None = None) -> list[bytes]:
    return [msgpack.packb({"v": WIRE_VERSION, **header}, use_bin_type=True), *(buffers or [])]


def unpack(parts: list[bytes], limit: int) -> tuple[dict, list[bytes]]:
    """The header and buffers of a message; WireError if it is too big, not msgpack, not a map,
    or of another version."""
    if not parts:
        raise WireError("schema", "an empty message")
    if sum(len(p) for p in parts) > limit:
        raise WireError("size", f"a message of {sum(len(p) for p in parts):,} bytes")
    try:
        header = msgpack.unpackb(parts[0], raw=False, strict_map_key=True)  # limits: its length
    except (ValueError, msgpack.UnpackException, TypeError) as exc:
        raise WireError("schema", f"not a msgpack header: {exc}") from None
    if not isinstance(header, dict):
        raise WireError("schema", "the header is not a map")
    if header.get("v") != WIRE_VERSION:
        raise WireError("version", f"wire version {header.get('v')!r}; this speaks {WIRE_VERSION}")
    if not isinstance(header.get("type"), str):
        raise WireError("schema", "the header has no type")
    return header, list(parts[1:])


def need(header: dict, key: str, kind: type | tuple, *, limit: int | None = None):
    """header[key], checked: of `kind`, and (for strings, lists) at most `limit` long."""
    value = header.get(key)
    if not isinstance(value, kind) or (isinstance(value, bool) and bool not in _kinds(kind)):
        raise WireError("schema", f"{header.get('type')}: {key} is not {_name(kind)}")
    if limit is not None and len(value) > limit:
        raise WireError("size", f"{header.get('type')}: {key} is longer than {limit}")
    return value


def _kinds(kind) -> tuple:
    return kind if isinstance(kind, tuple) else (kind,)


def _name(kind) -> str:
    return " or ".join(k.__name__ for k in _kinds(kind))


# --- client requests ----------------------------------------------------------------------------

MAX_PROMPT = 64 * 1024  # characters


def generation_from(header: dict) -> GenerationSettings:
    """A generate request's sampling settings, each checked against its type and range."""
    raw = need(header, "gen", dict)
    allowed = {f.name: type(f.default) for f in fields(GenerationSettings)}
    values = {}
    for key, value in raw.items():
        kind = {int: int, float: (int, float), bool: bool}.get(allowed.get(key))
        if kind is None:
            raise WireError("schema", f"generate: unknown setting {key!r}")
        if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
            raise WireError("schema", f"generate: {key} is not {_name(kind)}")
        values[key] = value
    gen = GenerationSettings(**values)
    if not (0 <= gen.temperature <= 10 and 0 <= gen.top_p <= 1 and 0 <= gen.top_k <= 100_000
            and 1 <= gen.max_tokens <= 1_000_000 and 2 <= gen.context <= 10_000_000):  # fmt: skip
        raise WireError("schema", "generate: a sampling setting is out of range")
    return gen


def detail_from(header: dict) -> Detail:
    raw = need(header, "detail", dict)
    try:
        detail = Detail(**raw)
    except TypeError:
        raise WireError("schema", "detail has unknown keys") from None
    ok = (detail.dtype in ("float32", "float16") and isinstance(detail.attention, int)
          and isinstance(detail.nodes, int) and isinstance(detail.quantize, bool)
          and 0 <= detail.attention <= 1 << 20 and 0 <= detail.nodes <= 4096)  # fmt: skip
    if not ok:
        raise WireError("schema", "detail is out of range")
    return detail


def detail_to(detail: Detail) -> dict:
    return asdict(detail)


def interventions_to(interventions: Interventions, ghost: bool) -> dict:
    return {"ablate": [a.spec for a in interventions.ablations],
            "steer": [s.spec for s in interventions.steering], "ghost": ghost}  # fmt: skip


def interventions_of(header: dict) -> tuple[Interventions, bool]:
    """A request's interventions, each spelling checked as the command line checks it."""
    raw = need(header, "interventions", dict)
    ablate = need(raw, "ablate", list, limit=64)
    steer = need(raw, "steer", list, limit=8)
    if not all(isinstance(x, str) and len(x) <= 4096 for x in (*ablate, *steer)):
        raise WireError("schema", "interventions: not a list of strings")
    try:
        return interventions_from(tuple(ablate), tuple(steer)), need(raw, "ghost", bool)
    except UserError as exc:
        raise WireError("schema", f"interventions: {exc}") from None


# --- statuses -----------------------------------------------------------------------------------


def status_to(status: Status, described: bool) -> dict:
    """`described`: with the architecture and config (once per session: they are large)."""
    out = {"state": status.state, "message": status.message, "progress": status.progress,
           "request": status.request, "model": status.model, "prompt": status.prompt}  # fmt: skip
    if described and status.architecture is not None:
        out["architecture"] = status.architecture.to_json()
        out["config"] = json.dumps(status.config)  # JSON text: a config has int keys
    return out


def status_from(raw: dict, known: Status | None) -> Status:
    """A status from the server; what it leaves out (architecture, config) is `known`'s."""
    if not isinstance(raw, dict):
        raise WireError("schema", "status is not a map")
    state = need(raw, "state", str, limit=32)
    if state not in ("starting", "loading", "ready", "generating", "finished", "stopped"):
        raise WireError("schema", f"status: unknown state {state!r}")
    arch = known.architecture if known is not None else None
    config = known.config if known is not None else None
    if "architecture" in raw:
        try:
            arch = Architecture.from_json(need(raw, "architecture", dict))
        except (KeyError, TypeError, ValueError) as exc:
            raise WireError("schema", f"status: architecture: {exc}") from None
        try:
            config = json.loads(need(raw, "config", str, limit=1 << 20))
        except json.JSONDecodeError as exc:
            raise WireError("schema", f"status: config: {exc}") from None
    return Status(state, need(raw, "message", str, limit=4096),
                  float(need(raw, "progress", (int, float))), need(raw, "request", int),
                  need(raw, "model", str, limit=4096), arch,
                  need(raw, "prompt", str, limit=MAX_PROMPT), config)  # fmt: skip


# --- frames -------------------------------------------------------------------------------------


def frame_to(frame: Frame, seq: int, request: int, detail: Detail) -> list[bytes]:
    """A frame as a message: its scalars in the header, its arrays as little-endian buffers."""
    arrays, buffers = [], []

    def add(name: str, array: np.ndarray, dtype: str) -> None:
        data = np.ascontiguousarray(array, DTYPES[dtype])
        arrays.append({"name": name, "dtype": dtype, "shape": list(data.shape)})
        buffers.append(data.astype(data.dtype.newbyteorder("<"), copy=False).tobytes())

    floats = "<f2" if detail.dtype == "float16" else "<f4"
    for name in FRAME_ARRAYS:
        value = getattr(frame, name)
        if detail.quantize and name in QUANTIZED:
            values = value.astype(np.float32)
            scale = np.abs(values).max(axis=-1, keepdims=True) / 127.0
            scale[scale == 0] = 1.0
            add(name, np.round(values / scale), "|i1")
            add(f"{name}.scale", scale[..., 0], "<f4")
        else:
            add(name, value, _KINDS.get(name, floats))
    header = {"type": "frame", "seq": seq, "request": request, "index": frame.index,
              "token_id": frame.token_id, "text": frame.text, "is_prompt": frame.is_prompt,
              "context_start": frame.context_start, "topk_text": list(frame.topk_text),
              "entropy": frame.entropy, "lens_text": list(frame.lens_text),
              "changed": list(frame.changed), "arrays": arrays}  # fmt: skip
    g = frame.ghost
    if g is not None:
        for name in GHOST_ARRAYS:
            add(f"ghost.{name}", getattr(g, name), _KINDS.get(name, floats))
        header["ghost"] = {"token_id": g.token_id, "text": g.text, "topk_text": list(g.topk_text),
                           "entropy": g.entropy, "lens_text": list(g.lens_text)}  # fmt: skip
    return pack(header, buffers)


# probabilities stay float32 at every detail: in float16 0.9999 is 1.0, printed "100%"
_KINDS = {"topk_ids": "<i8", "topk_probs": "<f4", "lens_ids": "<i4", "lens_probs": "<f4"}


def frame_from(header: dict, buffers: list[bytes]) -> Frame:
    """A frame from a message, every declared shape and size checked against what came."""
    specs = need(header, "arrays", list, limit=2 * len(FRAME_ARRAYS) + len(GHOST_ARRAYS))
    if len(specs) != len(buffers):
        raise WireError("schema", f"frame: {len(specs)} arrays declared, {len(buffers)} sent")
    arrays: dict[str, np.ndarray] = {}
    for spec, buffer in zip(specs, buffers, strict=True):
        if not isinstance(spec, dict):
            raise WireError("schema", "frame: an array spec is not a map")
        name = need(spec, "name", str, limit=32)
        if name in arrays:
            raise WireError("schema", f"frame: {name} twice")
        dtype = need(spec, "dtype", str, limit=4)
        shape = need(spec, "shape", list, limit=MAX_DIMS)
        if dtype not in DTYPES or not all(isinstance(d, int) and 0 <= d <= MAX_DIM for d in shape):
            raise WireError("schema", f"frame: {name}: bad dtype or shape")
        size = math.prod(shape) * np.dtype(DTYPES[dtype]).itemsize
        if size != len(buffer):
            raise WireError("size", f"frame: {name} declares {size:,} bytes, {len(buffer):,} came")
        arrays[name] = np.frombuffer(buffer, np.dtype(DTYPES[dtype]).newbyteorder("<")).reshape(
            shape).astype(DTYPES[dtype], copy=False)  # fmt: skip
    for name in QUANTIZED:  # int8 rows back to float16, with their scales
        if f"{name}.scale" in arrays:
            scale = arrays.pop(f"{name}.scale")
            arrays[name] = (arrays[name].astype(np.float32) * scale[..., None]).astype(np.float16)
    missing = [n for n in FRAME_ARRAYS if n not in arrays]
    if missing:
        raise WireError("schema", f"frame: no {', '.join(missing)}")
    a = arrays
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
    top_text = need(header, "topk_text", list, limit=len(a["topk_ids"]))
    if len(top_text) != len(a["topk_ids"]) or not all(isinstance(t, str) for t in top_text):
        raise WireError("schema", "frame: topk_text does not match topk_ids")
    index = need(header, "index", int)
    start = need(header, "context_start", int)
    if not 0 <= start <= index or a["attn"].shape[-1] > index - start + 1:
        raise WireError("schema", "frame: positions out of order")
    lens_text = _strings(header, "lens_text", layers + 1)
    changed = _strings(header, "changed", None)
    ghost = _ghost(header, a, layers)
    return Frame(
        index=index, token_id=need(header, "token_id", int),
        text=need(header, "text", str, limit=4096), is_prompt=need(header, "is_prompt", bool),
        context_start=start, hidden=a["hidden"], mlp=a["mlp"], mlp_write=a["mlp_write"],
        experts=a["experts"], attn=a["attn"], attn_sink=a["attn_sink"],
        topk_ids=a["topk_ids"], topk_probs=a["topk_probs"], topk_text=tuple(top_text),
        entropy=float(need(header, "entropy", (int, float))), lens_ids=a["lens_ids"],
        lens_probs=a["lens_probs"], lens_text=lens_text, changed=changed, ghost=ghost,
    )  # fmt: skip


def _strings(header: dict, key: str, count: int | None) -> tuple[str, ...]:
    values = need(header, key, list, limit=count if count is not None else 64)
    if (count is not None and len(values) != count) or not all(
            isinstance(v, str) and len(v) <= 4096 for v in values):  # fmt: skip
        raise WireError("schema", f"frame: {key} is not {count or 'a list of'} strings")
    return tuple(values)


def _ghost(header: dict, a: dict, layers: int) -> Ghost | None:
    if "ghost" not in header:
        return None
    g = need(header, "ghost", dict)
    missing = [n for n in GHOST_ARRAYS if f"ghost.{n}" not in a]
    if missing:
        raise WireError("schema", f"frame: the ghost has no {', '.join(missing)}")
    arrays = {n: a[f"ghost.{n}"] for n in GHOST_ARRAYS}
    if arrays["topk_ids"].shape != a["topk_ids"].shape or (
            arrays["lens_ids"].shape != a["lens_ids"].shape):  # fmt: skip
        raise WireError("schema", "frame: the ghost's arrays do not fit the frame's")
    top_text = need(g, "topk_text", list, limit=len(arrays["topk_ids"]))
    if len(top_text) != len(arrays["topk_ids"]) or not all(isinstance(t, str) for t in top_text):
        raise WireError("schema", "frame: the ghost's topk_text does not match its topk_ids")
    return Ghost(
        token_id=need(g, "token_id", int), text=need(g, "text", str, limit=4096),
        topk_ids=arrays["topk_ids"], topk_probs=arrays["topk_probs"], topk_text=tuple(top_text),
        entropy=float(need(g, "entropy", (int, float))), lens_ids=arrays["lens_ids"],
        lens_probs=arrays["lens_probs"], lens_text=_strings(g, "lens_text", layers + 1),
    )  # fmt: skip


def frame_bytes(parts: list[bytes]) -> int:
    return sum(len(p) for p in parts)
