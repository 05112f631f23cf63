"""The trace file: every position of one run, as a versioned .npz (loads with allow_pickle=False).

Format version 4 (T = positions, prompt first; L = blocks; H = query heads; W = the attention
window kept, meta "attention_window"; E = experts, 0 without MoE; K = lens words per layer):
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
  lens_ids       int32   [T, L+1, K]    the logit lens: each layer's top words (-1: not lensed)
  lens_probs     float32 [T, L+1, K]    (float16 before: 0.9999 became 1.0, "100%")
  lens_text      str     [T, L+1]       each layer's top word
  changed        str     [T]            the interventions on at that token, "; "-joined
  ghost_*                               the untouched run beside an intervened one, per position
                                        (ghost_token_ids -1 where there was none): token_ids
                                        [T], token_text [T], topk_ids, topk_probs, topk_text
                                        [T, k], entropy [T], lens_ids, lens_probs [T, L+1, K],
                                        lens_text [T, L+1]
  meta           str                    JSON: format_version, attention_window, model, n_prompt,
                                        prompt, sampling, notes, model_config, architecture,
                                        interventions, ...
An array whose values do not fit float16 is kept as float32. Versions 2 (float32, and attention
over all positions by column) and 3 (no lens, no ghost) are still read.

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
from visualizer.frame import Frame, Ghost

FORMAT_VERSION = 4  # 2: topk_text; 3: float16, attention window and sink, mlp_write, experts;
#                    4: the logit lens, interventions and the ghost
READABLE = (2, 3, 4)
_V3_ARRAYS = (
    "token_ids", "token_text", "is_prompt", "context_start", "hidden", "mlp", "mlp_write",
    "experts", "attn", "attn_sink", "topk_ids", "topk_probs", "topk_text", "entropy",
)  # fmt: skip
GHOST = ("token_ids", "token_text", "topk_ids", "topk_probs", "topk_text", "entropy",
         "lens_ids", "lens_probs", "lens_text")  # fmt: skip
ARRAYS = (*_V3_ARRAYS, "lens_ids", "lens_probs", "lens_text", "changed",
          *(f"ghost_{name}" for name in GHOST))  # fmt: skip
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
        # per row: text, topk_text, lens_text, changed, and the ghost's text, topk and lens text
        self._strings: list[tuple] = []
        self._wide: set[str] = set()  # arrays kept as float32 (values beyond float16)

    def _allocate(self, f: Frame) -> None:
        L, H = f.attn.shape[:2]  # noqa: N806
        k = len(f.topk_ids)
        lens = f.lens_ids.shape
        shapes = {
            "token_ids": ((), np.int64), "is_prompt": ((), bool), "context_start": ((), np.int64),
            "hidden": (f.hidden.shape, np.float16), "mlp": (f.mlp.shape, np.float16),
            "mlp_write": (f.mlp_write.shape, np.float16), "experts": (f.experts.shape, np.float16),
            "attn": ((L, H, self.window), np.float16), "attn_sink": ((L, H), np.float16),
            "topk_ids": ((k,), np.int64), "topk_probs": ((k,), np.float32),
            "entropy": ((), np.float32), "lens_ids": (lens, np.int32),
            "lens_probs": (lens, np.float32), "ghost_token_ids": ((), np.int64),
            "ghost_topk_ids": ((k,), np.int64), "ghost_topk_probs": ((k,), np.float32),
            "ghost_entropy": ((), np.float32), "ghost_lens_ids": (lens, np.int32),
            "ghost_lens_probs": (lens, np.float32),
        }  # fmt: skip
        old, self._arrays = self._arrays, {}
        for name, (shape, dtype) in shapes.items():
            dtype = np.float32 if name in self._wide else dtype
            self._arrays[name] = np.zeros((self.capacity, *shape), dtype)  # lazily paged in
            if name in old:
                self._arrays[name][: self.rows] = old[name][: self.rows]
            elif name in ("ghost_token_ids", "ghost_lens_ids"):
                self._arrays[name][:] = -1  # no ghost (yet)

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
        k = len(f.topk_ids)
        kept = min(f.attn.shape[-1], self.window)
        a["attn"][t, :, :, self.window - kept :] = f.attn[:, :, -kept:]
        a["attn_sink"][t] = f.attn_sink
        for name, value in (("token_ids", f.token_id), ("is_prompt", f.is_prompt),
                            ("context_start", f.context_start), ("topk_ids", f.topk_ids),
                            ("topk_probs", f.topk_probs), ("entropy", f.entropy)):  # fmt: skip
            a[name][t] = value
        a["lens_ids"][t], a["lens_probs"][t] = f.lens_ids, f.lens_probs
        g = f.ghost
        if g is not None:
            for name in ("token_id", "topk_ids", "topk_probs", "entropy", "lens_ids",
                         "lens_probs"):  # fmt: skip
                a[f"ghost_{name}s" if name == "token_id" else f"ghost_{name}"][t] = getattr(g, name)
        self._strings.append((f.text, f.topk_text, f.lens_text, "; ".join(f.changed),
                              g.text if g else "", g.topk_text if g else ("",) * k,
                              g.lens_text if g else ("",) * len(f.lens_text)))  # fmt: skip
        self.rows += 1
        self.frames.append(_frame(self._arrays, t, f.index, self._strings[-1], self.window))
        return self.frames[-1]

    def arrays(self) -> dict[str, np.ndarray]:
        if not self.rows:
            raise ValueError("a trace needs at least one frame")
        out = {name: array[: self.rows] for name, array in self._arrays.items()}
        columns = list(zip(*self._strings, strict=True))
        for name, column in zip(("token_text", "topk_text", "lens_text", "changed",
                                 "ghost_token_text", "ghost_topk_text", "ghost_lens_text"),
                                columns, strict=True):  # fmt: skip
            out[name] = np.array(column, dtype=str)
        return out


def _frame(a: dict, t: int, index: int, strings: tuple, window: int) -> Frame:
    """Row t as a Frame: views, no copies. Its attention covers the positions in view that the
    window kept (the newest ones). `strings`: the row's texts (TraceBuilder._strings)."""
    text, top_text, lens_text, changed, ghost_text, ghost_top, ghost_lens = strings
    start = int(a["context_start"][t])
    k = min(window, index - start + 1)
    ghost = None
    if int(a["ghost_token_ids"][t]) >= 0:
        ghost = Ghost(
            token_id=int(a["ghost_token_ids"][t]), text=ghost_text,
            topk_ids=a["ghost_topk_ids"][t], topk_probs=a["ghost_topk_probs"][t],
            topk_text=tuple(ghost_top), entropy=float(a["ghost_entropy"][t]),
            lens_ids=a["ghost_lens_ids"][t], lens_probs=a["ghost_lens_probs"][t],
            lens_text=tuple(ghost_lens),
        )  # fmt: skip
    return Frame(
        index=index, token_id=int(a["token_ids"][t]), text=text, is_prompt=bool(a["is_prompt"][t]),
        context_start=start, hidden=a["hidden"][t], mlp=a["mlp"][t], mlp_write=a["mlp_write"][t],
        experts=a["experts"][t], attn=a["attn"][t, :, :, window - k :],
        attn_sink=a["attn_sink"][t], topk_ids=a["topk_ids"][t], topk_probs=a["topk_probs"][t],
        topk_text=tuple(top_text), entropy=float(a["entropy"][t]), lens_ids=a["lens_ids"][t],
        lens_probs=a["lens_probs"][t], lens_text=tuple(lens_text),
        changed=tuple(changed.split("; ")) if changed else (), ghost=ghost,
    )  # fmt: skip


def frames_from_trace(trace: Trace) -> list[Frame]:
    """The frames again, as views into the trace's arrays (row t is position t)."""
    a = trace.arrays
    version = trace.meta.get("format_version")
    if version == 2:
        return _frames_v2(a)
    if version == 3:
        a = _without_lens(a)
    window = a["attn"].shape[-1]

    def strings(t: int) -> tuple:
        return (str(a["token_text"][t]), [str(s) for s in a["topk_text"][t]],
                [str(s) for s in a["lens_text"][t]], str(a["changed"][t]),
                str(a["ghost_token_text"][t]), [str(s) for s in a["ghost_topk_text"][t]],
                [str(s) for s in a["ghost_lens_text"][t]])  # fmt: skip

    return [_frame(a, t, t, strings(t), window) for t in range(len(trace))]


def _without_lens(a: dict) -> dict:
    """A version 3 trace's arrays with the lens and ghost columns it did not have, empty."""
    t, rows, k = len(a["token_ids"]), a["hidden"].shape[1], a["topk_ids"].shape[1]
    empty = {"lens_ids": np.full((t, rows, 1), -1, np.int32),
             "lens_probs": np.zeros((t, rows, 1), np.float16),
             "lens_text": np.full((t, rows), "", dtype=str), "changed": np.full(t, "", dtype=str),
             "ghost_token_ids": np.full(t, -1, np.int64), "ghost_token_text": np.full(t, "", str),
             "ghost_topk_ids": np.zeros((t, k), np.int64),
             "ghost_topk_probs": np.zeros((t, k), np.float32),
             "ghost_topk_text": np.full((t, k), "", dtype=str),
             "ghost_entropy": np.zeros(t, np.float32),
             "ghost_lens_ids": np.full((t, rows, 1), -1, np.int32),
             "ghost_lens_probs": np.zeros((t, rows, 1), np.float16),
             "ghost_lens_text": np.full((t, rows), "", dtype=str)}  # fmt: skip
    return {**a, **empty}


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
            entropy=float(a["entropy"][t]), lens_ids=np.full((layers + 1, 1), -1, np.int32),
            lens_probs=np.zeros((layers + 1, 1), np.float32), lens_text=("",) * (layers + 1),
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
    needed = {2: _V2_ARRAYS, 3: _V3_ARRAYS, 4: ARRAYS}[version]
    missing = [name for name in needed if name not in contents]
    if missing:
        raise UserError(f"{path}: trace lacks {', '.join(missing)}")
    return Trace(contents, meta)
