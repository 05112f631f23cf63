"""Interventions (visualizer/interventions.py) applied to the running model through forward
hooks on the modules inspect found, to batch row 0 only: row 1, when there is one, is the
ghost, the same run untouched.

The hooks are put in front of any other hook on the same module (the capture's), so what the
capture records is what the stream really received: a zeroed MLP's write is zero.
"""

from collections.abc import Iterator
from contextlib import contextmanager

import torch

from visualizer.interventions import Interventions, Steering
from visualizer.model.load import LoadedModel


def _zero_row0(output):
    """The module's output with batch row 0 zeroed (a tuple's first element)."""
    if isinstance(output, tuple):
        return (_zero_row0(output[0]), *output[1:])
    changed = output.clone()
    changed[0] = 0
    return changed


def steering_vector(lm: LoadedModel, steering: Steering) -> torch.Tensor:
    """The mean residual stream after block `steering.block` over the prompt "plus", minus the
    same over "minus" (each as raw text, its first position left out), times the scale:
    activation addition."""
    block = lm.parts.blocks[steering.block]
    seen: list[torch.Tensor] = []

    def keep(module, args, output) -> None:
        out = output[0] if isinstance(output, tuple) else output
        # over the prompt's positions after the first: many models park huge activations at
        # position 0 (the attention sink), which would swamp the difference
        positions = out[0, 1:] if out.shape[1] > 1 else out[0]
        seen.append(positions.float().mean(dim=0))  # [d]

    handle = block.register_forward_hook(keep)
    device = lm.model.get_input_embeddings().weight.device
    try:
        with torch.no_grad():
            for text in (steering.plus, steering.minus):
                ids = lm.tokenizer(text, add_special_tokens=True)["input_ids"]
                lm.model(input_ids=torch.tensor([ids], device=device), use_cache=False)
    finally:
        handle.remove()
    return steering.scale * (seen[0] - seen[1])


@contextmanager
def intervening(lm: LoadedModel, interventions: Interventions,
                vectors: dict[Steering, torch.Tensor]) -> Iterator[None]:  # fmt: skip
    """The interventions' hooks for the duration of the block; `vectors`: each steering's
    (steering_vector)."""
    parts = lm.parts
    handles = []
    heads = {}
    for a in interventions.ablations:
        if a.kind == "mlp":
            module = parts.mlp_writes[a.block]
            handles.append(module.register_forward_hook(
                lambda m, args, out: _zero_row0(out), prepend=True))  # fmt: skip
        elif a.kind == "attn":
            handles.append(parts.attentions[a.block].register_forward_hook(
                lambda m, args, out: _zero_row0(out), prepend=True))  # fmt: skip
        else:
            heads.setdefault(a.block, []).append(a.head)
    for block, ablated in heads.items():
        head_dim = lm.architecture.block[block].head_dim

        def silence(module, args, ablated=tuple(ablated), head_dim=head_dim):
            x = args[0].clone()
            for head in ablated:
                x[0, ..., head * head_dim : (head + 1) * head_dim] = 0
            return (x, *args[1:])

        handles.append(parts.attn_outs[block].register_forward_pre_hook(silence))
    for steering in interventions.steering:
        vector = vectors[steering]

        def add(module, args, output, vector=vector):
            out = output[0] if isinstance(output, tuple) else output
            out = out.clone()
            out[0] += vector.to(out.device, out.dtype)
            return (out, *output[1:]) if isinstance(output, tuple) else out

        handles.append(parts.blocks[steering.block].register_forward_hook(add, prepend=True))
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()
