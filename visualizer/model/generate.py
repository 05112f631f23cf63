"""The per-token loop: prefill the prompt in chunks, then decode one token at a time, yielding a
Frame for every position. Plain and synchronous: the stream runs it in the model process, and
`neuroweb trace` and the tests iterate it directly.
"""

import threading
from collections.abc import Callable, Iterator

import numpy as np
import torch
from transformers import DynamicCache

from visualizer.config import CaptureSettings, GenerationSettings
from visualizer.detail import Detail
from visualizer.frame import Frame
from visualizer.model.capture import FULL, Captured, capture
from visualizer.model.load import LoadedModel
from visualizer.model.sampling import Sampler, summarize
from visualizer.model.text import Detokenizer, encode_prompt


def context_window(model, requested: int) -> int:
    """Tokens kept in view: the requested window, never more than the model's positions."""
    limit = getattr(model.config, "max_position_embeddings", None) or requested
    return min(requested, limit)


def eos_ids(lm: LoadedModel) -> set[int]:
    ids = lm.model.generation_config.eos_token_id
    ids = set(ids if isinstance(ids, list) else [] if ids is None else [ids])
    if lm.tokenizer.eos_token_id is not None:
        ids.add(lm.tokenizer.eos_token_id)
    return ids


class _View:
    """The tokens in the KV cache, and where the cache starts in the run."""

    def __init__(self, model, window: int) -> None:
        self.model, self.window = model, window
        self.cache = DynamicCache(config=model.config)
        self.ids: list[int] = []
        self.start = 0  # run position of ids[0]

    def forward(self, ids: list[int]) -> torch.Tensor:
        """Feed `ids` after the cached ones; logits [S, V]."""
        device = self.model.get_input_embeddings().weight.device  # a dispatched model's first
        out = self.model(
            input_ids=torch.tensor([ids], device=device), cache=self.cache, use_cache=True
        )  # logits [1, S, V]
        self.ids.extend(ids)
        return out.logits[0].float().cpu()

    def slide(self, chunk: int, stop: threading.Event | None) -> None:
        """Keep the newest half of the view and rebuild the cache from it (positions restart)."""
        keep = self.ids[-(self.window // 2 - 1) :]
        self.start += len(self.ids) - len(keep)
        self.cache, self.ids = DynamicCache(config=self.model.config), []
        for i in range(0, len(keep), chunk):
            if stop is not None and stop.is_set():
                return
            self.forward(keep[i : i + chunk])


def _frames(
    ids: list[int],
    first_index: int,
    past: int,
    view_start: int,
    cap: Captured,
    logits: torch.Tensor,  # [S, V]
    k: int,
    detok: Detokenizer,
    is_prompt: bool,
    window: int,
) -> Iterator[Frame]:
    """One Frame per position of the pass; `window`: attention positions kept (0: all)."""
    top_ids, top_probs, entropy = summarize(logits, k)  # [S, k], [S, k], [S]
    for s, token in enumerate(ids):
        candidates = top_ids[s].tolist()
        n = past + s + 1  # positions this token attends to, itself included
        low = max(0, n - window) if window else 0  # the newest `window` of them
        yield Frame(
            index=first_index + s,
            token_id=token,
            text=detok.push(token),
            is_prompt=is_prompt,
            context_start=view_start,
            hidden=cap.hidden[s].copy(),
            mlp=cap.mlp[s].copy(),
            mlp_write=cap.mlp_write[s].copy(),
            experts=cap.experts[s].copy(),
            attn=np.ascontiguousarray(cap.attn[s, :, :, low - cap.attn_first : n - cap.attn_first]),
            attn_sink=cap.attn_sink[s].copy(),
            topk_ids=np.array(candidates, np.int64),
            topk_probs=top_probs[s].numpy().astype(np.float32),
            topk_text=tuple(detok.piece(c) for c in candidates),
            entropy=float(entropy[s]),
        )


def generate_frames(
    lm: LoadedModel,
    prompt: str,
    gen: GenerationSettings,
    cap: CaptureSettings,
    stop: threading.Event | None = None,
    notice: Callable[[str], None] | None = None,
    detail: Detail = FULL,
) -> Iterator[Frame]:
    """Frames for the prompt's positions, then for each generated token, until EOS,
    gen.max_tokens, or `stop`, at `detail`. A prompt longer than the window keeps its newest
    half-window."""
    ids = encode_prompt(lm.tokenizer, prompt, gen.raw)
    view = _View(lm.model, context_window(lm.model, gen.context))
    if len(ids) > view.window:
        kept = view.window // 2
        if notice:
            notice(f"prompt of {len(ids)} tokens: keeping its last {kept} (generation.context)")
        ids = ids[-kept:]
    detok, sampler, eos = Detokenizer(lm.tokenizer), Sampler(gen), eos_ids(lm)
    run: list[int] = []
    with torch.no_grad(), capture(lm.model, lm.parts) as rec:
        for i in range(0, len(ids), cap.prefill_chunk):
            if stop is not None and stop.is_set():
                return
            chunk = ids[i : i + cap.prefill_chunk]
            past = len(view.ids)
            logits = view.forward(chunk)
            captured = rec.take(len(view.ids), detail)
            yield from _frames(chunk, i, past, 0, captured, logits, cap.candidates, detok, True,
                               detail.attention)  # fmt: skip
            run.extend(chunk)
        for _ in range(gen.max_tokens):
            if stop is not None and stop.is_set():
                return
            token = sampler(torch.tensor([run]), logits[-1])
            if len(view.ids) + 1 > view.window:
                view.slide(cap.prefill_chunk, stop)
                rec.clear()
                if stop is not None and stop.is_set():
                    return
            past = len(view.ids)
            logits = view.forward([token])
            captured = rec.take(len(view.ids), detail)
            yield from _frames([token], len(run), past, view.start, captured, logits,
                               cap.candidates, detok, False, detail.attention)  # fmt: skip
            run.append(token)
            if token in eos:
                return
