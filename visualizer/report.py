"""`neuroweb inspect`: the description the architecture scene is drawn from, printed, with the
module path or config key each fact came from. Nothing is rendered."""

import json
import re

from visualizer.architecture import UNKNOWN, Architecture, Block, ranges


def inspect_command(model: str, trust_pickle: bool, as_json: bool) -> int:
    from visualizer.model.load import load_model

    lm = load_model(model, trust_pickle=trust_pickle)
    arch = lm.architecture
    print(json.dumps(arch.to_json(), indent=2) if as_json else "\n".join(lines(arch)))
    return 0


def _value(value) -> str:
    if value is None:
        return UNKNOWN
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def _by_blocks(arch: Architecture, describe) -> list[tuple[str, str, str]]:
    """One row per distinct value of `describe(block)`, naming the blocks that have it."""
    prefix = re.escape(arch.sources.get("blocks", "").split(" ")[0])
    groups: dict[tuple[str, str], list[int]] = {}
    for i, block in enumerate(arch.block):
        text, source = describe(block)
        source = re.sub(rf"({prefix})\.\d+", r"\1.<block>", source) if prefix else source
        source = source.replace(f"[{i}]", "[<block>]")  # config.layer_types[i]
        groups.setdefault((text, source), []).append(i)
    one = len(groups) == 1

    def which(ids: list[int]) -> str:
        return (f"all {arch.blocks} blocks" if one else
                f"block {ids[0]}" if len(ids) == 1 else f"blocks {ranges(ids)}")  # fmt: skip

    return [(which(ids), text, source) for (text, source), ids in groups.items()]


def _per_block(arch: Architecture, name: str, describe) -> list[tuple[str, str, str]]:
    rows = _by_blocks(arch, describe)
    return [(name, f"{blocks}: {text}", source) for blocks, text, source in rows]


def _norms(b: Block) -> tuple[str, str]:
    if not b.steps:
        return UNKNOWN, ""
    text = "; ".join(f"{s.label} {s.where}" for s in b.norms) or "none"
    return text, ", ".join(s.source for s in b.norms)


def _attention(b: Block) -> tuple[str, str]:
    text = {"global": "global", "sliding": f"sliding, window {b.window}"}.get(b.attention or "")
    return text or UNKNOWN, b.sources.get("attention", "")


def _mlp(b: Block) -> tuple[str, str]:
    m = b.mlp
    gated = {True: "gated", False: "not gated", None: "gated: unknown"}[m.gated]
    text = f"{m.name}: {gated}, activation {_value(m.activation)}, width {_value(m.width)}"
    if m.shared:
        text += f", shared expert {', '.join(s.rsplit('.', 1)[-1] for s in m.shared)}"
    return text, m.sources.get("gated") or m.sources.get("experts", "")


def lines(arch: Architecture) -> list[str]:
    s = arch.sources
    first = arch.first
    rows: list[tuple[str, str, str]] = [
        ("name", arch.name, s.get("name", "")),
        ("family", _value(arch.family), s.get("family", "")),
        ("blocks", str(arch.blocks), s.get("blocks", "")),
        ("width", _value(arch.width), s.get("width", "")),
        ("heads", _value(first.heads), first.sources.get("heads", "")),
        ("KV heads", _value(first.kv_heads), first.sources.get("kv_heads", "")),
        ("head_dim", _value(first.head_dim), first.sources.get("head_dim", "")),
        ("d_ff", _value(arch.mlp_width), first.mlp.sources.get("width", "")),
        ("vocab", _value(arch.vocab), s.get("vocab", "")),
        ("context", _value(arch.context), s.get("context", "")),
        ("positions", _value(arch.positions), s.get("positions", "")),
    ]
    for kind, theta in arch.rope_theta.items():
        rows.append((f"RoPE θ ({kind})", f"{theta:g}", s.get("rope_theta", "")))
    rows += _per_block(arch, "RoPE", lambda b: (
        {True: "rotates q and k", False: "none", None: UNKNOWN}[b.rope],
        b.sources.get("rope", "")))  # fmt: skip
    rows += _per_block(arch, "attention", _attention)
    rows += _per_block(arch, "  scale", lambda b: (_value(b.scale), b.sources.get("scale", "")))
    rows += _per_block(arch, "  softcap", lambda b: (
        _value(b.softcap) if b.softcap else "none", b.sources.get("softcap", "")))  # fmt: skip
    rows += _per_block(arch, "norms", _norms)
    rows += _per_block(arch, "q/k norm", lambda b: (
        b.qk_norm or "none", b.sources.get("qk_norm", "")))  # fmt: skip
    rows += _per_block(arch, "parallel", lambda b: (
        _value(b.parallel) if b.steps else UNKNOWN, b.sources.get("parallel", "")))  # fmt: skip
    rows += _per_block(arch, "MLP", _mlp)
    rows += _per_block(arch, "MoE", lambda b: (
        f"{b.mlp.experts} experts, {b.mlp.active} active per token" if b.mlp.experts else "no",
        b.mlp.sources.get("experts", b.sources.get("moe", ""))))  # fmt: skip
    rows += _per_block(arch, "biases", lambda b: (
        f"attention: {', '.join(b.attn_bias) or 'none'}; MLP: {_value(b.mlp.bias)}",
        b.sources.get("attn_bias", "")))  # fmt: skip
    rows += [
        ("final norm", _value(arch.final_norm), s.get("final_norm", "")),
        ("tied embeddings", _value(arch.tied), s.get("tied", "")),
        ("embedding scale", _value(arch.embed_scale), s.get("embed_scale", "")),
        ("final softcap", _value(arch.final_softcap) if arch.final_softcap else "none",
         s.get("final_softcap", "")),
        ("chat template", _value(arch.chat_template), s.get("chat_template", "")),
    ]  # fmt: skip
    label_w = max(len(r[0]) for r in rows) + 2
    out = []
    for label, value, source in rows:
        out.append(f"{label:<{label_w}}{value}")
        if source:
            out.append(f"{'':<{label_w}}  ↳ {source}")
    out += [f"note: {note}" for note in arch.notes]
    return out
