"""A Frame as a message and back: its scalars in the header (FrameMessage), its arrays as raw
little-endian buffers, packed as compactly as the client's detail allows (float16 where every
value fits, int8 rows with a float32 scale each), and on the way back every declared shape and
size checked against what came, and every number finite."""

import math

import numpy as np

from visualizer.detail import Detail
from visualizer.frame import Frame, Ghost
from visualizer.wire.codec import pack
from visualizer.wire.messages import ArraySpec, FrameMessage, GhostHeader, WireError

DTYPES = {"<f4": np.float32, "<f2": np.float16, "<i8": np.int64, "<i4": np.int32,
          "|i1": np.int8}  # fmt: skip
FRAME_ARRAYS = ("hidden", "mlp", "mlp_write", "experts", "attn", "attn_sink", "topk_ids",
                "topk_probs", "lens_ids", "lens_probs")  # fmt: skip
GHOST_ARRAYS = ("topk_ids", "topk_probs", "lens_ids", "lens_probs")
QUANTIZED = ("hidden", "mlp_write")
FLOAT16_MAX = float(np.finfo(np.float16).max)  # 65504: beyond it a float16 is inf


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
