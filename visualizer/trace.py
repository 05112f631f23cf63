"""The trace file: every position of one run, as a versioned .npz (loads with allow_pickle=False).

Format version 3 (T = positions, prompt first; L = blocks; H = query heads; W = the attention
window kept, meta "attention_window"; E = experts, 0 without MoE):
  token_ids      int64   [T]
  token_text     str     [T]            the text each token adds
  is_prompt      bool    [T]
  context_start  int64   [T]            first position still in the model's view for that token
  hidden         float16 [T, L+1, d]    embedding output (block 0's input), then each block's
                                        raw output; not transformers' final-norm last state
  mlp            float16 [T, L, d_ff]   MLP activation before the down projection (0 in MoE blocks)
  mlp_write      float16 [T, L, d]      what each MLP branch added to the residual stream
  experts        float16 [T, L, E]      each MoE block's routing weight per expert
  attn           float16 [T, L, H, W]   row t: position t's attention over its newest W positions,
                                        right-aligned (column W-1 is position t itself, column
                                        W-1-j position t-j); zeros for positions out of view
  attn_sink      float16 [T, L, H]      its attention to the first position in view
                                        (context_start), kept when that is older than the window
  topk_ids       int64   [T, k]         next-token candidates after position t (T=1 softmax)
  topk_probs     float32 [T, k]
  topk_text      str     [T, k]         each candidate decoded alone
  entropy        float32 [T]            nats
  meta           str                    JSON: format_version, attention_window, model, n_prompt,
                                        prompt, sampling, notes, model_config, architecture, ...
An array whose values do not fit float16 is kept as float32. Version 2 (float32, and attention
over all positions by column) is still read.

Why this shape: a 4,096-token SmolLM2 run kept whole would be 18 GB of attention alone; the
scenes show at most the newest few dozen positions and the sink, so the window (64 by default,
`--attention-window`) keeps what can be drawn, and float16 halves the rest.
"""

import json
import os
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from visualizer.errors import UserError
from visualizer.frame import Frame

FORMAT_VERSION = 3  # 2: topk_text added; 3: float16, attention window and sink, mlp_write, experts
READABLE = (2, 3)
ARRAYS = (
    "token_ids", "token_text", "is_prompt", "context_start", "hidden", "mlp", "mlp_write",
    "experts", "attn", "attn_sink", "topk_ids", "topk_probs", "topk_text", "entropy",
)  # fmt: skip
_V2_ARRAYS = ("token_ids", "token_text", "is_prompt", "context_start", "hidden", "mlp", "attn",
              "topk_ids", "topk_probs", "topk_text", "entropy")  # fmt: skip
FLOAT16_LIMIT = 6.0e4  # beyond this an array keeps float32 (float16 ends at 65504)


@dataclass(frozen=True)
class Trace:
    arrays: dict[str, np.ndarray]
    meta: dict

    def __len__(self) -> int:
        return len(self.arrays["token_ids"])


class TraceBuilder:
    """Frames into the trace's arrays as they come, so that a long run holds one float16 copy
    with a bounded attention window, never the frames themselves.

    `add` returns the frame as the trace will give it back (a view into these arrays), so a
    render straight from a prompt draws exactly what a render of the saved trace would."""

    def __init__(self, window: int, capacity: int = 256) -> None:
        if window < 1:
            raise ValueError("the attention window needs at least one position")
        self.window = window
        self.capacity = max(1, capacity)
        self.rows = 0
        self.frames: list[Frame] = []  # as add() returned them
        self._arrays: dict[str, np.ndarray] = {}
        self._text: list[str] = []
        self._top_text: list[tuple[str, ...]] = []
        self._wide: set[str] = set()  # arrays kept as float32 (values beyond float16)

    def _allocate(self, f: Frame) -> None:
        L, H = f.attn.shape[:2]  # noqa: N806
        k = len(f.topk_ids)
        shapes = {
            "token_ids": ((), np.int64), "is_prompt": ((), bool), "context_start": ((), np.int64),
            "hidden": (f.hidden.shape, np.float16), "mlp": (f.mlp.shape, np.float16),
            "mlp_write": (f.mlp_write.shape, np.float16), "experts": (f.experts.shape, np.float16),
            "attn": ((L, H, self.window), np.float16), "attn_sink": ((L, H), np.float16),
            "topk_ids": ((k,), np.int64), "topk_probs": ((k,), np.float32),
            "entropy": ((), np.float32),
        }  # fmt: skip
        old, self._arrays = self._arrays, {}
        for name, (shape, dtype) in shapes.items():
            dtype = np.float32 if name in self._wide else dtype
            self._arrays[name] = np.zeros((self.capacity, *shape), dtype)  # lazily paged in
            if name in old:
                self._arrays[name][: self.rows] = old[name][: self.rows]

    def _widen(self, name: str) -> None:
        self._wide.add(name)
        self._arrays[name] = self._arrays[name].astype(np.float32)

    def add(self, f: Frame) -> Frame:
        if not self._arrays:
            self._allocate(f)
        if self.rows == self.capacity:
            self.capacity = self.capacity * 3 // 2 + 1
            self._allocate(f)
        t, a = self.rows, self._arrays
        for name in ("hidden", "mlp", "mlp_write", "experts"):
            value = getattr(f, name)
            if name not in self._wide and value.size and np.abs(value).max() > FLOAT16_LIMIT:
                self._widen(name)
            a[name][t] = value
        k = min(f.attn.shape[-1], self.window)
        a["attn"][t, :, :, self.window - k :] = f.attn[:, :, -k:]
        a["attn_sink"][t] = f.attn_sink
        for name, value in (("token_ids", f.token_id), ("is_prompt", f.is_prompt),
                            ("context_start", f.context_start), ("topk_ids", f.topk_ids),
                            ("topk_probs", f.topk_probs), ("entropy", f.entropy)):  # fmt: skip
            a[name][t] = value
        self._text.append(f.text)
        self._top_text.append(f.topk_text)
        self.rows += 1
        self.frames.append(_frame(self._arrays, t, f.index, f.text, f.topk_text, self.window))
        return self.frames[-1]

    def arrays(self) -> dict[str, np.ndarray]:
        if not self.rows:
            raise ValueError("a trace needs at least one frame")
        out = {name: array[: self.rows] for name, array in self._arrays.items()}
        out["token_text"] = np.array(self._text, dtype=str)
        out["topk_text"] = np.array(self._top_text, dtype=str)
        return out


def _frame(a: dict, t: int, index: int, text: str, top_text, window: int) -> Frame:
    """Row t as a Frame: views, no copies. Its attention covers the positions in view that the
    window kept (the newest ones)."""
    start = int(a["context_start"][t])
    k = min(window, index - start + 1)
    return Frame(
        index=index, token_id=int(a["token_ids"][t]), text=text, is_prompt=bool(a["is_prompt"][t]),
        context_start=start, hidden=a["hidden"][t], mlp=a["mlp"][t], mlp_write=a["mlp_write"][t],
        experts=a["experts"][t], attn=a["attn"][t, :, :, window - k :],
        attn_sink=a["attn_sink"][t], topk_ids=a["topk_ids"][t], topk_probs=a["topk_probs"][t],
        topk_text=tuple(top_text), entropy=float(a["entropy"][t]),
    )  # fmt: skip


def frames_from_trace(trace: Trace) -> list[Frame]:
    """The frames again, as views into the trace's arrays (row t is position t)."""
    a = trace.arrays
    if trace.meta.get("format_version") == 2:
        return _frames_v2(a)
    window = a["attn"].shape[-1]
    texts, tops = a["token_text"], a["topk_text"]
    return [_frame(a, t, t, str(texts[t]), (str(s) for s in tops[t]), window)
            for t in range(len(trace))]  # fmt: skip


def _frames_v2(a: dict) -> list[Frame]:
    """Version 2: float32, attention by absolute column; no MLP write or routing was kept."""
    frames = []
    layers, width = a["mlp"].shape[1], a["hidden"].shape[-1]
    for t in range(len(a["token_ids"])):
        start = int(a["context_start"][t])
        frames.append(Frame(
            index=t, token_id=int(a["token_ids"][t]), text=str(a["token_text"][t]),
            is_prompt=bool(a["is_prompt"][t]), context_start=start, hidden=a["hidden"][t],
            mlp=a["mlp"][t], mlp_write=np.zeros((layers, width), np.float32),
            experts=np.zeros((layers, 0), np.float32), attn=a["attn"][t, :, :, start : t + 1],
            attn_sink=a["attn"][t, :, :, start], topk_ids=a["topk_ids"][t],
            topk_probs=a["topk_probs"][t], topk_text=tuple(str(s) for s in a["topk_text"][t]),
            entropy=float(a["entropy"][t]),
        ))  # fmt: skip
    return frames


def build(frames: Sequence[Frame], window: int) -> TraceBuilder:
    builder = TraceBuilder(window, len(frames))
    for frame in frames:
        builder.add(frame)
    return builder


def write_trace(path: Path, frames: Sequence[Frame] | TraceBuilder, meta: dict,
                window: int = 64) -> None:  # fmt: skip
    """Write atomically: a crash or Ctrl-C leaves either the old file or the complete new one.
    `window`: the attention window kept when `frames` is not already a TraceBuilder."""
    builder = frames if isinstance(frames, TraceBuilder) else build(frames, window)
    arrays = builder.arrays()
    meta = {"format_version": FORMAT_VERSION, "attention_window": builder.window, **meta}
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with tmp.open("wb") as f:
            np.savez_compressed(f, meta=np.array(json.dumps(meta)), **arrays)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def read_trace(path: Path) -> Trace:
    """Load and check a trace; bad files raise UserError naming the file and the problem."""
    try:
        with np.load(path, allow_pickle=False) as data:
            contents = {name: data[name] for name in data.files}
    except FileNotFoundError:
        raise UserError(f"{path}: no such trace file") from None
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise UserError(f"{path}: not a readable trace (.npz): {exc}") from None
    if "meta" not in contents:
        raise UserError(f"{path}: not a neuroweb trace (no 'meta')")
    try:
        meta = json.loads(str(contents.pop("meta")))
    except json.JSONDecodeError as exc:
        raise UserError(f"{path}: its meta is not JSON: {exc}") from None
    version = meta.get("format_version") if isinstance(meta, dict) else None
    if version not in READABLE:
        readable = " and ".join(str(v) for v in READABLE)
        raise UserError(f"{path}: trace format version {version}; this neuroweb reads {readable}")
    missing = [name for name in (ARRAYS if version == 3 else _V2_ARRAYS) if name not in contents]
    if missing:
        raise UserError(f"{path}: trace lacks {', '.join(missing)}")
    return Trace(contents, meta)
