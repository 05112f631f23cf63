"""The per-token loop: prefill the prompt in chunks, then decode one token at a time, yielding a
Frame for every position. Plain and synchronous: the model process and the server run it, and
the tests iterate it directly.

While an intervention is on (and the ghost is wanted), the batch has two rows: row 0 is the
changed run, row 1 the ghost, the same run untouched, sampled with its own generator seeded
alike. Interventions can change between tokens (`changes`): one switched on mid-answer splits
the cache in two from that token on; all switched off drops the ghost.
"""

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import torch
from transformers import DynamicCache

from visualizer.config import CaptureSettings, GenerationSettings
from visualizer.detail import Detail
from visualizer.frame import Frame, Ghost
from visualizer.interventions import Interventions
from visualizer.model.capture import FULL, Captured, Recorder, capture
from visualizer.model.intervene import intervening, steering_vector
from visualizer.model.lens import OWN_ANSWER, lens_rows
from visualizer.model.load import LoadedModel
from visualizer.model.sampling import Sampler, summarize
from visualizer.model.text import Detokenizer, encode_prompt

NONE = Interventions()


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
    """The tokens in the KV cache (one list per batch row), and where it starts in the run."""

    def __init__(self, model, window: int) -> None:
        self.model, self.window = model, window
        self.cache = DynamicCache(config=model.config)
        self.ids: list[list[int]] = [[]]
        self.start = 0  # run position of ids[row][0]

    @property
    def length(self) -> int:
        return len(self.ids[0])

    def forward(self, chunks: list[list[int]]) -> torch.Tensor:
        """Feed each row its chunk after the cached ones; logits [rows, S, V]."""
        device = self.model.get_input_embeddings().weight.device  # a dispatched model's first
        out = self.model(
            input_ids=torch.tensor(chunks, device=device), cache=self.cache, use_cache=True
        )  # logits [rows, S, V]
        for row, chunk in zip(self.ids, chunks, strict=True):
            row.extend(chunk)
        return out.logits.float().cpu()

    def split(self) -> None:
        """Row 0 becomes two: the ghost starts as the run so far."""
        self.cache.batch_repeat_interleave(2)
        self.ids = [self.ids[0], list(self.ids[0])]

    def merge(self) -> None:
        """Only row 0 goes on."""
        self.cache.batch_select_indices(torch.tensor([0]))
        self.ids = self.ids[:1]

    def slide(self, chunk: int, stop: threading.Event | None) -> None:
        """Keep the newest half of the view and rebuild the cache from it (positions restart)."""
        keep = [row[-(self.window // 2 - 1) :] for row in self.ids]
        self.start += self.length - len(keep[0])
        self.cache, self.ids = DynamicCache(config=self.model.config), [[] for _ in keep]
        for i in range(0, len(keep[0]), chunk):
            if stop is not None and stop.is_set():
                return
            self.forward([row[i : i + chunk] for row in keep])


@dataclass
class _Ghost:
    """The untouched run's own state beside row 0's."""

    sampler: Sampler
    detok: Detokenizer
    run: list[int]
    ended: bool = False


def summarized(logits: torch.Tensor, k: int, lens_ids: np.ndarray, lens_probs: np.ndarray
               ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:  # fmt: skip
    """summarize(logits [S, V], k); and the lens's last row [S, L+1, ·], when it is lensed,
    is the model's own answer: Recorder.take leaves it (OWN_ANSWER) for the same exact top
    words, as many as the lens keeps, to fill here."""
    width = lens_ids.shape[-1]
    top_ids, top_probs, entropy = summarize(logits, max(k, width))
    if np.all(lens_ids[..., -1, 0] == OWN_ANSWER):
        lens_ids[..., -1, :] = top_ids[:, :width].numpy()
        lens_probs[..., -1, :] = top_probs[:, :width].numpy()
    return top_ids[:, :k], top_probs[:, :k], entropy


def _ghost_frame(g: _Ghost, token: int, logits: torch.Tensor, lens: tuple, k: int) -> Ghost:
    ids, probs = lens
    top_ids, top_probs, entropy = summarized(logits[None], k, ids[None], probs[None])
    candidates = top_ids[0].tolist()
    return Ghost(
        token_id=token, text=g.detok.push(token), topk_ids=np.array(candidates, np.int64),
        topk_probs=top_probs[0].numpy().astype(np.float32),
        topk_text=tuple(g.detok.piece(c) for c in candidates), entropy=float(entropy[0]),
        lens_ids=ids, lens_probs=probs,
        lens_text=tuple(g.detok.piece(int(i)) if i >= 0 else "" for i in ids[:, 0]),
    )  # fmt: skip


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
    changed: tuple[str, ...],
    ghosts: list[Ghost | None],
) -> Iterator[Frame]:
    """One Frame per position of the pass; `window`: attention positions kept (0: all)."""
    top_ids, top_probs, entropy = summarized(logits, k, cap.lens_ids, cap.lens_probs)  # [S, k]
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
            lens_ids=cap.lens_ids[s].copy(),
            lens_probs=cap.lens_probs[s].copy(),
            lens_text=tuple(detok.piece(int(i)) if i >= 0 else "" for i in cap.lens_ids[s, :, 0]),
            changed=changed,
            ghost=ghosts[s],
        )


class _Interventions:
    """The interventions in force, their hooks and steering vectors; `set` swaps them."""

    def __init__(self, lm: LoadedModel, rec: Recorder | None = None) -> None:
        self.lm, self.rec = lm, rec
        self.now = NONE
        self.vectors: dict = {}
        self._hooks = None

    def set(self, wanted: Interventions) -> None:
        wanted.check(len(self.lm.parts.blocks), self.lm.architecture.heads)
        self.close()
        for steering in wanted.steering:
            if steering not in self.vectors:
                self.vectors[steering] = steering_vector(self.lm, steering)
        if self.rec is not None:
            self.rec.clear()  # the steering prompts' passes are not frames
        self.now = wanted
        self._hooks = intervening(self.lm, wanted, self.vectors)
        self._hooks.__enter__()

    def close(self) -> None:
        if self._hooks is not None:
            self._hooks.__exit__(None, None, None)
            self._hooks = None


def generate_frames(
    lm: LoadedModel,
    prompt: str,
    gen: GenerationSettings,
    cap: CaptureSettings,
    stop: threading.Event | None = None,
    notice: Callable[[str], None] | None = None,
    detail: Detail = FULL,
    interventions: Interventions = NONE,
    ghost: bool = True,
    changes: Callable[[], Interventions | None] | None = None,
) -> Iterator[Frame]:
    """Frames for the prompt's positions, then for each generated token, until EOS,
    gen.max_tokens, or `stop`, at `detail`. `interventions` apply from the first prompt token;
    `changes()`, asked before each generated token, returns new ones (or None); while any is
    on and `ghost`, the untouched run comes along in the frames. A prompt longer than the window
    keeps its newest half-window."""
    ids = encode_prompt(lm.tokenizer, prompt, gen.raw)
    view = _View(lm.model, context_window(lm.model, gen.context))
    if len(ids) > view.window:
        kept = view.window // 2
        if notice:
            notice(f"prompt of {len(ids)} tokens: keeping its last {kept} (generation.context)")
        ids = ids[-kept:]
    detok, sampler, eos = Detokenizer(lm.tokenizer), Sampler(gen), eos_ids(lm)
    lens = (lens_rows(len(lm.parts.blocks), cap.lens_every), cap.lens_candidates)
    shadow: _Ghost | None = None
    run: list[int] = []
    k = cap.candidates
    with torch.no_grad(), capture(lm.model, lm.parts, lens) as rec:
        changed = _Interventions(lm, rec)
        try:
            changed.set(interventions)
            if interventions.active and ghost:
                view.ids = [[], []]
                shadow = _Ghost(Sampler(gen), Detokenizer(lm.tokenizer), [])
            for i in range(0, len(ids), cap.prefill_chunk):
                if stop is not None and stop.is_set():
                    return
                chunk = ids[i : i + cap.prefill_chunk]
                past = view.length
                # "last": none of an earlier chunk's positions lensed, the last chunk's last one
                last = i + len(chunk) == len(ids)
                rec.lens_from = 0 if cap.lens_prompt == "all" else len(chunk) - last
                logits = view.forward([chunk] * len(view.ids))
                captured = rec.take(view.length, detail)
                ghosts = [None] * len(chunk)
                if shadow is not None:
                    shadow.run.extend(chunk)
                    ghosts = [_ghost_frame(shadow, t, logits[1, s], _lens_of(captured, s), k)
                              for s, t in enumerate(chunk)]  # fmt: skip
                yield from _frames(chunk, i, past, 0, captured, logits[0], cap.candidates, detok,
                                   True, detail.attention, changed.now.specs, ghosts)  # fmt: skip
                run.extend(chunk)
            rec.lens_from = 0
            for _ in range(gen.max_tokens):
                if stop is not None and stop.is_set():
                    return
                wanted = changes() if changes is not None else None
                if wanted is not None and wanted != changed.now:
                    changed.set(wanted)  # from this token on
                    if wanted.active and ghost and shadow is None:
                        view.split()
                        logits = logits.repeat(2, 1, 1)
                        shadow = _Ghost(sampler.fork(), detok.fork(), list(run))
                    elif not wanted.active and shadow is not None:
                        view.merge()
                        logits = logits[:1]
                        shadow = None
                token = sampler(torch.tensor([run]), logits[0, -1])
                tokens = [token]
                if shadow is not None:
                    other = shadow.sampler(torch.tensor([shadow.run]), logits[1, -1])
                    tokens.append(next(iter(eos)) if shadow.ended and eos else other)
                if view.length + 1 > view.window:
                    rec.lens_from = cap.prefill_chunk  # its passes make no frames: no lens
                    view.slide(cap.prefill_chunk, stop)
                    rec.clear()
                    rec.lens_from = 0
                    if stop is not None and stop.is_set():
                        return
                past = view.length
                logits = view.forward([[t] for t in tokens])
                captured = rec.take(view.length, detail)
                ghosts = [None]
                if shadow is not None:
                    shown = None if shadow.ended else _ghost_frame(
                        shadow, tokens[1], logits[1, -1], _lens_of(captured, 0), k)  # fmt: skip
                    shadow.run.append(tokens[1])
                    shadow.ended = shadow.ended or tokens[1] in eos
                    ghosts = [shown]
                yield from _frames([token], len(run), past, view.start, captured, logits[0],
                                   cap.candidates, detok, False, detail.attention,
                                   changed.now.specs, ghosts)  # fmt: skip
                run.append(token)
                if token in eos:
                    return
        finally:
            changed.close()


def _lens_of(captured: Captured, s: int) -> tuple[np.ndarray, np.ndarray]:
    return captured.ghost_lens_ids[s].copy(), captured.ghost_lens_probs[s].copy()
