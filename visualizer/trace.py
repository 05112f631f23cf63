"""The trace file: every position of one run, as a versioned .npz (loads with allow_pickle=False).

Format version 2 (T = positions, prompt first; L = blocks; H = query heads):
  token_ids      int64   [T]
  token_text     str     [T]            the text each token adds
  is_prompt      bool    [T]
  context_start  int64   [T]            first position still in view for that token
  hidden         float32 [T, L+1, d]    embedding output (block 0's input), then each block's
                                        raw output; not transformers' final-norm last state
  mlp            float32 [T, L, d_ff]   MLP activation before the down projection
  attn           float32 [T, L, H, P]   row t: position t's attention over positions 0..t
                                        (columns are run positions; zeros outside its view)
  topk_ids       int64   [T, k]         next-token candidates after position t (T=1 softmax)
  topk_probs     float32 [T, k]
  topk_text      str     [T, k]         each candidate decoded alone
  entropy        float32 [T]            nats
  meta           str                    JSON: format_version, model, n_prompt, prompt,
                                        sampling, model_config, ...
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

FORMAT_VERSION = 2  # 2: topk_text added
ARRAYS = (
    "token_ids", "token_text", "is_prompt", "context_start", "hidden", "mlp", "attn",
    "topk_ids", "topk_probs", "topk_text", "entropy",
)  # fmt: skip


@dataclass(frozen=True)
class Trace:
    arrays: dict[str, np.ndarray]
    meta: dict

    def __len__(self) -> int:
        return len(self.arrays["token_ids"])


def frames_to_arrays(frames: Sequence[Frame]) -> dict[str, np.ndarray]:
    if not frames:
        raise ValueError("a trace needs at least one frame")
    width = max(f.context_start + f.attn.shape[-1] for f in frames)
    n_layers, n_heads = frames[0].attn.shape[:2]
    attn = np.zeros((len(frames), n_layers, n_heads, width), np.float32)  # [T, L, H, P]
    for t, f in enumerate(frames):
        attn[t, :, :, f.context_start : f.context_start + f.attn.shape[-1]] = f.attn
    return {
        "token_ids": np.array([f.token_id for f in frames], np.int64),
        "token_text": np.array([f.text for f in frames], dtype=str),
        "is_prompt": np.array([f.is_prompt for f in frames], bool),
        "context_start": np.array([f.context_start for f in frames], np.int64),
        "hidden": np.stack([f.hidden for f in frames]),
        "mlp": np.stack([f.mlp for f in frames]),
        "attn": attn,
        "topk_ids": np.stack([f.topk_ids for f in frames]),
        "topk_probs": np.stack([f.topk_probs for f in frames]),
        "topk_text": np.array([f.topk_text for f in frames], dtype=str),
        "entropy": np.array([f.entropy for f in frames], np.float32),
    }


def frames_from_trace(trace: Trace) -> list[Frame]:
    """The frames again, as the stream delivered them (row t's view: context_start .. t)."""
    a = trace.arrays
    frames = []
    for t in range(len(trace)):
        start = int(a["context_start"][t])
        frames.append(Frame(
            index=t, token_id=int(a["token_ids"][t]), text=str(a["token_text"][t]),
            is_prompt=bool(a["is_prompt"][t]), context_start=start,
            hidden=a["hidden"][t].copy(), mlp=a["mlp"][t].copy(),
            attn=np.ascontiguousarray(a["attn"][t, :, :, start : t + 1]),
            topk_ids=a["topk_ids"][t].copy(), topk_probs=a["topk_probs"][t].copy(),
            topk_text=tuple(str(s) for s in a["topk_text"][t]), entropy=float(a["entropy"][t]),
        ))  # fmt: skip
    return frames


def write_trace(path: Path, frames: Sequence[Frame], meta: dict) -> None:
    """Write atomically: a crash or Ctrl-C leaves either the old file or the complete new one."""
    arrays = frames_to_arrays(frames)
    meta = {"format_version": FORMAT_VERSION, **meta}
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
    meta = json.loads(str(contents.pop("meta")))
    version = meta.get("format_version")
    if version != FORMAT_VERSION:
        raise UserError(
            f"{path}: trace format version {version}; this neuroweb reads version {FORMAT_VERSION}"
        )
    missing = [name for name in ARRAYS if name not in contents]
    if missing:
        raise UserError(f"{path}: trace lacks {', '.join(missing)}")
    return Trace(contents, meta)
