"""`neuroweb trace --engine nnsight`: the same trace file, made through nnsight instead of
neuroweb's own hooks: on this machine, or (`--remote`) on NDIF, the shared research cluster
that hosts models far bigger than any one machine. A remote run comes back whole at the end,
so this path is for traces and offline renders, not for the live window.

The answer is generated first (transformers' `generate` inside nnsight: greedy, or sampled with
the run's seed, which picks other tokens than neuroweb's own sampler), then one eager
full-sequence pass saves every position's internals at once, in the order the model computes
them: block 0's input and each block's output, each dense MLP's activation (its output
projection's input) and its write, the attention weights (eager attention: nnsight sees them
only as `output_attentions`), and the logits. nnsight is an optional extra
(`pip install 'neuroweb[nnsight]'`).

`--remote local` is a dry run of the remote path: the request is serialised exactly as NDIF
would receive it, then run here (nnsight's local simulation), so it can be built and checked
without the network.
"""

import warnings
from dataclasses import dataclass

import numpy as np

from visualizer import __version__
from visualizer.architecture import from_config
from visualizer.config import Settings
from visualizer.errors import UserError
from visualizer.frame import Frame
from visualizer.trace import TraceBuilder


@dataclass(frozen=True)
class _Points:
    """Module paths the pass reads, per block."""

    blocks: str  # "model.layers"
    downs: tuple[str | None, ...]  # a dense MLP's output projection; None: MoE
    writes: tuple[str, ...]  # the module whose output is the MLP branch's write


def _paths(model) -> dict:
    return {module: name for name, module in model.named_modules()}


def _points_from_parts(model, parts) -> _Points:
    """Where neuroweb's own inspection found them (a model with its weights here)."""
    paths = _paths(model)
    blocks = paths[parts.blocks]
    return _Points(blocks, tuple(paths[d] if d is not None else None for d in parts.downs),
                   tuple(paths[w] for w in parts.mlp_writes))  # fmt: skip


def _points_from_names(model) -> _Points:
    """A model whose weights are elsewhere (NDIF): nothing can run here to watch it, so the
    MLP is the block's child named for it, its output projection the last projection in it,
    and its write that MLP's output (before any post-MLP norm; said in the notes)."""
    from visualizer.model.inspect import find_blocks

    blocks_path, blocks = find_blocks(model)
    downs, writes = [], []
    for i, block in enumerate(blocks):
        name = next((n for n, _ in block.named_children()
                     if any(k in n for k in ("mlp", "ffn", "feed_forward"))), None)  # fmt: skip
        if name is None:
            raise UserError(f"--engine nnsight: block {i} has no child named like an MLP")
        projections = [n for n, m in getattr(block, name).named_modules()
                       if getattr(m, "weight", None) is not None and m.weight.ndim == 2
                       and not list(m.children())]  # fmt: skip
        downs.append(f"{blocks_path}.{i}.{name}.{projections[-1]}" if projections else None)
        writes.append(f"{blocks_path}.{i}.{name}")
    return _Points(blocks_path, tuple(downs), tuple(writes))


def _run(model, points: _Points, ids: list[int], gen, run_remote, hf, tokenizer):
    """Generate the answer, then one full pass over it saving what the trace keeps."""
    import nnsight
    import torch

    torch.manual_seed(gen.seed)
    sampling = {"do_sample": gen.temperature > 0}
    if gen.temperature > 0:
        sampling.update(temperature=gen.temperature, top_k=gen.top_k or None, top_p=gen.top_p)
    with model.generate(torch.tensor([ids]), max_new_tokens=gen.max_tokens, remote=run_remote,
                        **sampling):  # fmt: skip
        answer = model.generator.output.save()
    run = [int(t) for t in answer[0].tolist()]
    eos = {tokenizer.eos_token_id, *np.atleast_1d(hf.generation_config.eos_token_id or [])}
    for n, token in enumerate(run[len(ids):]):  # generate may pad after its end of sequence
        if token in eos:
            run = run[: len(ids) + n + 1]
            break
    with model.trace(torch.tensor([run]), output_attentions=True, remote=run_remote):
        first = model.get(f"{points.blocks}.0").inputs.save()
        saved = nnsight.save([])
        for i, down_path in enumerate(points.downs):
            down = model.get(f"{down_path}.input") if down_path else None
            write = model.get(f"{points.writes[i]}.output")
            out = model.get(f"{points.blocks}.{i}.output")
            saved.append((down, write, out))
        output = model.output.save()
    return run, first, saved, output


def nnsight_trace(settings: Settings, prompt: str, remote: str | None) -> tuple[TraceBuilder, dict]:
    """The run as `neuroweb trace` writes it; `remote`: None (here), "ndif" or "local" (the
    remote path's dry run)."""
    try:
        import torch
        import transformers
        from nnsight import TransformersModel
    except ImportError:
        raise UserError("--engine nnsight: nnsight is not installed; "
                        "pip install 'neuroweb[nnsight]'") from None  # fmt: skip

    from visualizer.model.generate import context_window
    from visualizer.model.inspect import inspect_model
    from visualizer.model.lens import lens_rows, logit_lens
    from visualizer.model.load import resolve
    from visualizer.model.sampling import summarize
    from visualizer.model.text import Detokenizer, encode_prompt

    transformers.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    gen, capture = settings.generation, settings.capture
    if remote == "ndif":
        if not settings.model.name:
            raise UserError("--remote: name the model NDIF serves with --model (a hub name)")
        where, name, notes = settings.model.name, settings.model.name, []
    else:
        folder, name, _ = resolve(settings.model.name, lambda fraction, stage: None)
        where, notes = str(folder), []
    run_remote = {"ndif": True, "local": "local"}.get(remote or "", False)
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(where)
    with warnings.catch_warnings():  # nnsight's deprecation notes are not the user's
        warnings.simplefilter("ignore")
        model = TransformersModel(where, task="text-generation", dispatch=not run_remote,
                                  attn_implementation="eager", dtype=torch.float32,
                                  tokenizer=tokenizer)  # fmt: skip
    hf = model._module
    parts = None
    if run_remote:
        points = _points_from_names(hf)
        arch = from_config(hf.config.to_dict(), name, "its weights are not on this machine")
        notes.append("mlp_write is each MLP's output, before any post-MLP norm (read by name: "
                     "the model runs off this machine)")  # fmt: skip
    else:
        arch, parts = inspect_model(hf, tokenizer, name, "--model")
        points = _points_from_parts(hf, parts)
    notes += list(arch.notes)
    notes.append("traced through nnsight (one eager full-sequence pass after generating)")

    ids = encode_prompt(tokenizer, prompt, gen.raw)
    window = context_window(hf, gen.context)
    if len(ids) + gen.max_tokens > window:
        raise UserError(f"--engine nnsight: the prompt ({len(ids)} tokens) and --tokens "
                        f"({gen.max_tokens}) must fit the {window}-token context")  # fmt: skip
    try:
        with warnings.catch_warnings():  # nnsight's deprecation notes are not the user's
            warnings.simplefilter("ignore")
            run, first, saved, output = _run(model, points, ids, gen, run_remote, hf, tokenizer)
    except (UserError, KeyboardInterrupt):
        raise
    except Exception as exc:  # noqa: BLE001 - the network, NDIF, a key: one line, not a trace
        if not run_remote:
            raise
        raise UserError(f"--remote: the remote run failed: {exc}") from None
    blocks = len(points.downs)

    def tensor(value) -> torch.Tensor:
        return (value[0] if isinstance(value, tuple) else value).detach().float().cpu()

    hidden = torch.stack([tensor(first[0][0] if isinstance(first, tuple) else first)[0]]
                         + [tensor(out)[0] for _, _, out in saved], dim=1)  # [T, L+1, d]
    width = max((tensor(d)[0].shape[-1] for d, _, _ in saved if d is not None), default=0)
    mlp = torch.zeros(len(run), blocks, width)
    for i, (down, _, _) in enumerate(saved):
        if down is not None:
            mlp[:, i] = tensor(down)[0]
    writes = torch.stack([tensor(w)[0] for _, w, _ in saved], dim=1)  # [T, L, d]
    attn = torch.stack([a[0].detach().float().cpu() for a in output.attentions])  # [L, H, T, T]
    top_ids, top_probs, entropy = summarize(tensor(output.logits)[0], capture.candidates)
    rows = lens_rows(blocks, capture.lens_every) if not run_remote else ()
    if not rows and capture.lens_every:
        notes.append("no logit lens: the model's final norm and unembedding are not here")
    with torch.no_grad():
        lens_ids, lens_probs = logit_lens(hidden, parts, rows, capture.lens_candidates) if rows \
            else logit_lens(hidden, None, (), capture.lens_candidates)
    detok = Detokenizer(tokenizer)
    builder = TraceBuilder(capture.trace_window, len(run))
    for t, token in enumerate(run):
        candidates = top_ids[t].tolist()
        builder.add(Frame(
            index=t, token_id=token, text=detok.push(token), is_prompt=t < len(ids),
            context_start=0, hidden=hidden[t].numpy(), mlp=mlp[t].numpy(),
            mlp_write=writes[t].numpy(), experts=np.zeros((blocks, 0), np.float32),
            attn=np.ascontiguousarray(attn[:, :, t, : t + 1].numpy()),
            attn_sink=attn[:, :, t, 0].numpy(), topk_ids=np.array(candidates, np.int64),
            topk_probs=top_probs[t].numpy().astype(np.float32),
            topk_text=tuple(detok.piece(c) for c in candidates), entropy=float(entropy[t]),
            lens_ids=lens_ids[t].numpy(), lens_probs=lens_probs[t].numpy(),
            lens_text=tuple(detok.piece(int(i)) if i >= 0 else "" for i in lens_ids[t, :, 0]),
        ))  # fmt: skip
    meta = {
        "model": name, "prompt": prompt, "n_prompt": len(ids), "raw": gen.raw,
        "sampling": {"temperature": gen.temperature, "top_k": gen.top_k, "top_p": gen.top_p,
                     "seed": gen.seed, "max_tokens": gen.max_tokens, "context": gen.context},
        "notes": list(dict.fromkeys(notes)), "source": f"nnsight ({remote or 'here'})",
        "engine": "nnsight", "model_config": hf.config.to_dict(),
        "architecture": arch.to_json(), "text": "".join(f.text for f in builder.frames),
        "neuroweb_version": __version__,
    }  # fmt: skip
    return builder, meta
