"""What the loaded model is made of, read from the model itself: its module tree, one small
forward pass watched by hooks, and its config (in transformers 5's own form).

No list of families decides a fact that the model can tell:
- where each norm sits is read from the data flow of the probe pass (a norm whose output is
  the attention's input sits before attention; one whose input is the attention's output sits
  after it, before ⊕), so names that mislead (Llama's `post_attention_layernorm` runs before
  the MLP) do not;
- a norm's kind is told by behaviour (a LayerNorm ignores a shift of its input, an RMSNorm only
  a scale), an activation by its values against the known ones;
- heads, head size, the attention scale, softcapping and sliding windows are what the model
  hands its attention function in the probe pass;
- the MLP's projections (gate/up/down, fc1/fc2, c_fc/c_proj, fused gate_up) by which tensors
  they read and write; experts and routing by the experts module's parameters and inputs.
Only what a module cannot show comes from the config (RoPE θ per layer type, the context, final
logit softcapping); a fact neither tells is None ("unknown").

`inspect_model` returns the description (plain data, for the window and traces) and the Parts,
the modules the capture hooks. The probe pass is `probe.py`, telling a module's kind by its values
`kinds.py`, reading one block `block.py`; here, what belongs to the whole model (the embedding,
positions, the final norm, the unembedding, the config's facts) and the putting together.
"""

from dataclasses import dataclass

import torch
from torch import nn

from visualizer.architecture import Architecture, _rope_theta, ranges
from visualizer.model.block import BlockReader
from visualizer.model.kinds import is_norm, norm_kind
from visualizer.model.probe import Probe, find_blocks, run_probe, text_config


@dataclass(frozen=True)
class Parts:
    """The modules the capture hooks, per block (found by inspect_model)."""

    blocks: nn.ModuleList
    attentions: tuple[nn.Module, ...]
    downs: tuple[nn.Module | None, ...]  # a dense MLP's output projection (its input is the
    #                                       activation); None in an MoE block
    mlp_writes: tuple[nn.Module, ...]  # the last module of each MLP branch: its output is
    #                                     what the branch adds to the residual stream
    experts: tuple[nn.Module | None, ...]  # an MoE block's experts (inputs: top-k ids, weights)
    n_experts: int  # the most experts of any block (0: no MoE)
    mlp_width: int  # the widest dense MLP (the frames' d_ff)
    attn_outs: tuple[nn.Module, ...]  # each attention's output projection (heads → width)
    final_norm: nn.Module | None  # norm → unembed (→ softcap): the logit lens of a layer
    unembed: nn.Module
    final_softcap: float | None


def inspect_model(
    model: nn.Module, tokenizer=None, name: str = "", name_source: str = ""
) -> tuple[Architecture, Parts]:
    """The description of `model` and the modules the capture hooks. Raises UserError for a
    model whose blocks, attention or MLP cannot be found."""
    blocks_path, blocks = find_blocks(model)
    probe = run_probe(model)
    config = model.config
    notes: list[str] = []
    described, hooks = [], []
    for i, block in enumerate(blocks):
        reader = BlockReader(i, f"{blocks_path}.{i}", block, probe, config)
        spec, hook = reader.read()
        described.append(spec)
        hooks.append(hook)
        notes += reader.notes
    moe = [i for i, b in enumerate(described) if b.mlp.experts]
    if moe:
        notes.append(f"MoE blocks ({ranges(moe)}): the experts' activations are not captured "
                     "(the mlp array holds zeros there); each token's routing and the MLP's "
                     "write are captured")  # fmt: skip
    sources: dict[str, str] = {"blocks": f"{blocks_path} ({len(blocks)} modules)"}
    embedding = model.get_input_embeddings()
    emb_path = next(n for n, c in model.named_modules() if c is embedding)
    emb_call = probe.calls[embedding]
    width = emb_call.y.shape[-1]
    sources["width"] = f"{emb_path}: output size"
    weight = embedding.weight.detach()
    scale = None  # unknown where the weights are offloaded (they sit on disk until used)
    if weight.device.type != "meta":
        rows = weight[emb_call.args[0][0].to(weight.device)].float()
        ratio = emb_call.y[0].float().to(rows.device) / torch.where(rows == 0, 1.0, rows)
        scale = float(ratio[rows != 0].median()) if bool((rows != 0).any()) else None
    embed_scale = 1.0 if scale is not None and abs(scale - 1) < 1e-5 else scale
    sources["embed_scale"] = f"{emb_path}: its output ÷ its weight row"
    sources["embedding"] = emb_path
    positions, rope_theta = _positions(model, probe, blocks, embedding, sources)
    if positions is None and any(b.rope for b in described):  # rotary code inside the blocks
        positions = "RoPE"
        sources["positions"] = "the blocks' attention calls: q and k turned by position"
    output = model.get_output_embeddings()
    out_path = next((n for n, c in model.named_modules() if c is output), "")
    tied = None if output is None else (output.weight is embedding.weight or (
        "meta" not in (output.weight.device.type, weight.device.type)
        and output.weight.data_ptr() == weight.data_ptr()))  # fmt: skip
    sources["tied"] = f"{out_path}.weight is {emb_path}.weight"
    vocab = int(probe.logits.shape[-1])
    sources["vocab"] = f"{out_path}: logits size"
    final = _final_norm(model, probe, blocks)
    if final:
        sources["final_norm"] = final[0]
    lm_config = text_config(model)
    context, key = _config_value(lm_config, "max_position_embeddings", "n_positions", "n_ctx")
    if key:
        sources["context"] = f"config.{key}"
    softcap = getattr(lm_config, "final_logit_softcapping", None)
    sources["final_softcap"] = "config.final_logit_softcapping"
    sources["family"] = "config.model_type"
    sources["name"] = name_source
    template = None if tokenizer is None else getattr(tokenizer, "chat_template", None) is not None
    sources["chat_template"] = "tokenizer.chat_template"
    sources["notes"] = "what neuroweb's reading of this model and its capture could not do exactly"
    if template is False:
        notes.append("no chat template (a base model): prompts are used as they are")
    arch = Architecture(
        name=name, family=getattr(config, "model_type", None), blocks=len(blocks), width=width,
        vocab=vocab, context=int(context) if context else None, positions=positions,
        rope_theta=rope_theta, block=tuple(described), embedding=emb_path,
        embed_scale=embed_scale, final_norm=final[1] if final else None, tied=tied,
        final_softcap=float(softcap) if softcap else None, chat_template=template,
        notes=tuple(notes), sources=sources,
    )  # fmt: skip
    widths = [b.mlp.width for b in described if not b.mlp.experts and b.mlp.width]
    parts = Parts(
        blocks=blocks, attentions=tuple(h["attention"] for h in hooks),
        downs=tuple(h["down"] for h in hooks), mlp_writes=tuple(h["write"] for h in hooks),
        experts=tuple(h["experts"] for h in hooks),
        n_experts=max((b.mlp.experts for b in described), default=0),
        mlp_width=max(widths, default=0), attn_outs=tuple(h["attn_out"] for h in hooks),
        final_norm=final[2] if final else None, unembed=output,
        final_softcap=float(softcap) if softcap else None,
    )  # fmt: skip
    return arch, parts


def _config_value(config, *keys: str) -> tuple[object, str]:
    for key in keys:
        value = getattr(config, key, None)
        if value is not None:
            return value, key
    return None, ""


def _positions(model, probe: Probe, blocks, embedding, sources: dict) -> tuple[str | None, dict]:
    """RoPE (a called module holding inverse frequencies; θ from config.rope_parameters),
    learned (another embedding table the model called), or unknown."""
    in_blocks = {m for b in blocks for m in b.modules()}
    for path, module in model.named_modules():
        if module in in_blocks or module not in probe.calls:
            continue
        if any(n.endswith("inv_freq") for n, _ in module.named_buffers(recurse=False)):
            theta = _rope_theta(getattr(text_config(model), "rope_parameters", None) or {})
            sources["positions"] = f"{path}: rotary inverse frequencies"
            if theta:
                per_type = "all" not in theta
                sources["rope_theta"] = (
                    "config.rope_parameters[<layer type>].rope_theta" if per_type
                    else "config.rope_parameters.rope_theta")  # fmt: skip
            return "RoPE", theta
        if isinstance(module, nn.Embedding) and module is not embedding:
            shape = tuple(module.weight.shape)
            sources["positions"] = f"{path}: learned position embedding {shape}"
            sources["rope_theta"] = f"none: {path} adds learned positions"
            return "learned", {}
    sources["positions"] = "no rotary module or position embedding was called"
    return None, {}


def _final_norm(model, probe: Probe, blocks) -> tuple[str, str | None, nn.Module] | None:
    last = probe.calls[blocks[-1]].order
    in_blocks = {m for b in blocks for m in b.modules()}
    after = [(p, m) for p, m in model.named_modules() if m in probe.calls and m not in in_blocks
             and is_norm(m) and probe.calls[m].order > last]  # fmt: skip
    if not after:
        return None
    path, norm = min(after, key=lambda item: probe.calls[item[1]].order)
    return path, norm_kind(norm, probe.calls[norm].x.shape[-1]), norm
