"""What a decoder-only transformer is made of: the facts the architecture scene draws and
`neuroweb inspect` prints.

The facts are read from the loaded model itself (`visualizer/model/inspect.py` walks its modules
and watches one small forward pass; the rest comes from its config), so a picture of the model
is never a picture of its family. Every fact keeps where it came from (a module path or a
config key) in `sources`; a fact that could not be read is None, and is shown as "unknown".

Plain data, no torch: the window process has none, and traces keep it as JSON (`to_json`).
"""

import json
from dataclasses import MISSING, dataclass, field, fields, replace
from typing import Any

JSON_FORMAT = 1  # of to_json(): bump when a key changes meaning
UNKNOWN = "unknown"

# The name papers give a gated MLP, by its activation (act(gate) × up).
GATED_NAMES = {"SiLU": "SwiGLU", "GELU": "GeGLU", "GELU (tanh)": "GeGLU", "GELU (quick)": "GeGLU",
               "ReLU": "ReGLU"}  # fmt: skip
# Config activation keys → the names used here (only for a fact no module could tell).
CONFIG_ACTIVATIONS = {"silu": "SiLU", "swish": "SiLU", "gelu": "GELU", "gelu_new": "GELU (tanh)",
                      "gelu_pytorch_tanh": "GELU (tanh)", "gelu_fast": "GELU (tanh)",
                      "relu": "ReLU", "quick_gelu": "GELU (quick)", "relu2": "ReLU²"}  # fmt: skip


@dataclass(frozen=True)
class Step:
    """One step of a block, in the order the data passes it."""

    kind: str  # "norm" | "attention" | "mlp" | "add" (the residual ⊕)
    label: str  # "RMSNorm", "attention", "SwiGLU", "⊕"
    source: str  # the module path ("model.layers.0.input_layernorm"); the block's for ⊕
    where: str = ""  # for a norm: "before attention", "after attention", "before the MLP", ...


@dataclass(frozen=True)
class Mlp:
    gated: bool | None  # act(gate(x)) × up(x) → down, or act(up(x)) → down
    activation: str | None  # "SiLU", "GELU (tanh)", ... as measured on the module
    width: int | None  # d_ff of a dense MLP (the down projection's input); per expert for MoE
    projections: tuple[str, ...] = ()  # module paths, in the order they run
    bias: bool | None = None  # its projections carry a bias
    experts: int = 0  # 0: a dense MLP; else experts in the block (routed, not counting shared)
    active: int = 0  # experts each token is routed to
    shared: tuple[str, ...] = ()  # module paths of always-on shared experts
    sources: dict[str, str] = field(default_factory=dict, compare=False)

    @property
    def name(self) -> str:
        """As papers write it: "SwiGLU", "GELU MLP", "MoE 8 × SwiGLU (2 active)"."""
        act = self.activation or UNKNOWN
        if self.gated is None:
            base = f"{act} MLP" if self.activation else "MLP (unknown kind)"
        elif self.gated:
            base = GATED_NAMES.get(act, f"gated {act}")
        else:
            base = f"{act} MLP"
        if self.experts:
            return f"MoE {self.experts} × {base} ({self.active} active)"
        return base


@dataclass(frozen=True)
class Block:
    attention: str | None  # "global" | "sliding"
    window: int | None  # tokens a sliding block's queries see (itself included)
    heads: int | None
    kv_heads: int | None
    head_dim: int | None
    scale: float | None  # the factor on q·kᵀ (1/√head_dim, or query_pre_attn_scalar's)
    softcap: float | None  # attention logits → tanh(x / c) · c; None: none
    qk_norm: str | None  # "RMSNorm over each head (64)", or None: no q/k norm
    attn_bias: tuple[str, ...]  # attention projections with a bias ("q_proj", ...)
    steps: tuple[Step, ...]  # () when the order could not be read
    parallel: bool  # attention and MLP both read the block's input (GPT-J style)
    mlp: Mlp
    rope: bool | None = None  # its attention rotates q and k (RoPE); None: unknown
    sources: dict[str, str] = field(default_factory=dict, compare=False)

    @property
    def norms(self) -> tuple[Step, ...]:
        return tuple(s for s in self.steps if s.kind == "norm")


@dataclass(frozen=True)
class Architecture:
    name: str  # what to call the model (GGUF general.name, or what --model named)
    family: str | None  # the config's model_type
    blocks: int
    width: int | None  # d_model, the residual stream's size
    vocab: int | None
    context: int | None  # positions the model was trained for
    positions: str | None  # "RoPE" (inside attention) | "learned" (added to the embedding) | "none"
    rope_theta: dict[str, float]  # θ per layer type ("all" when one θ serves every block)
    block: tuple[Block, ...]  # one per block, bottom up
    embedding: str | None  # the token embedding's module path
    embed_scale: float | None  # the embedding's output ÷ its weight row (1 = unscaled)
    final_norm: str | None  # "RMSNorm" | "LayerNorm"
    tied: bool | None  # the unembedding reuses the token embedding matrix
    final_softcap: float | None  # final logits → tanh(x / c) · c
    chat_template: bool | None  # False: a base model; prompts are used as they are
    notes: tuple[str, ...] = ()  # what the capture or this description could not do exactly
    sources: dict[str, str] = field(default_factory=dict, compare=False)

    # --- what every block shares (the first block's value where they differ) ---------------

    @property
    def first(self) -> Block:
        return self.block[0]

    @property
    def heads(self) -> int | None:
        return self.first.heads

    @property
    def kv_heads(self) -> int | None:
        return self.first.kv_heads

    @property
    def head_dim(self) -> int | None:
        return self.first.head_dim

    @property
    def mlp_width(self) -> int | None:
        return next((b.mlp.width for b in self.block if not b.mlp.experts), self.first.mlp.width)

    @property
    def grouped(self) -> bool:
        """Grouped-query attention: several query heads share each key/value head."""
        return bool(self.heads and self.kv_heads and self.kv_heads < self.heads)

    @property
    def group_size(self) -> int:
        return self.heads // self.kv_heads if self.grouped else 1

    def kv_group(self, head: int) -> int:
        """The key/value head that query `head` reads (transformers' repeat_kv order)."""
        return head // self.group_size

    @property
    def sliding(self) -> tuple[int, ...]:
        return tuple(i for i, b in enumerate(self.block) if b.attention == "sliding")

    @property
    def moe(self) -> tuple[int, ...]:
        return tuple(i for i, b in enumerate(self.block) if b.mlp.experts)

    @property
    def rope_blocks(self) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]:
        """The blocks whose attention rotates q and k, those whose does not, and those where
        that is unknown."""
        ids = {value: tuple(i for i, b in enumerate(self.block) if b.rope is value)
               for value in (True, False, None)}  # fmt: skip
        return ids[True], ids[False], ids[None]

    def theta_of(self, block: int) -> float | None:
        """RoPE θ of one block: by its layer type where the config gives θ per type."""
        if "all" in self.rope_theta:
            return self.rope_theta["all"]
        kind = self.block[block].attention
        key = {"global": "full_attention", "sliding": "sliding_attention"}.get(kind or "")
        return self.rope_theta.get(key) if key else None

    # --- JSON: what `inspect --json` prints and traces keep -------------------------------

    def to_json(self) -> dict:
        """Every fact as {"value": …, "source": …}; blocks as a list of the same."""
        out: dict[str, Any] = {"format": JSON_FORMAT}
        out.update(_facts(self))
        return out

    @classmethod
    def from_json(cls, data: dict) -> "Architecture":
        """The inverse of to_json (traces keep the description their model had)."""
        if data.get("format") != JSON_FORMAT:
            raise ValueError(f"architecture description format {data.get('format')}")
        return _unfacts(cls, data)


# Fields that hold parts rather than facts: how each is written and read back.
_PARTS = {"block": "blocks", "mlp": "part", "steps": "steps"}


def _facts(obj) -> dict:
    out = {}
    for f in fields(obj):
        value = getattr(obj, f.name)
        if f.name == "sources":
            continue
        if _PARTS.get(f.name) == "blocks":
            out[f.name] = [_facts(b) for b in value]
        elif _PARTS.get(f.name) == "part":
            out[f.name] = _facts(value)
        elif _PARTS.get(f.name) == "steps":
            out[f.name] = [{s.name: getattr(step, s.name) for s in fields(step)} for step in value]
        else:
            plain = list(value) if isinstance(value, tuple) else value
            out[f.name] = {"value": plain, "source": obj.sources.get(f.name, "")}
    return out


def _unfacts(cls, data: dict):
    kwargs, sources = {}, {}
    for f in fields(cls):
        if f.name == "sources" or (f.name not in data and f.default is not MISSING):
            continue  # a fact added since it was written: its default (unknown)
        item = data[f.name]
        if _PARTS.get(f.name) == "blocks":
            kwargs[f.name] = tuple(_unfacts(Block, b) for b in item)
        elif _PARTS.get(f.name) == "part":
            kwargs[f.name] = _unfacts(Mlp, item)
        elif _PARTS.get(f.name) == "steps":
            kwargs[f.name] = tuple(Step(**s) for s in item)
        else:
            value = item["value"]
            kwargs[f.name] = tuple(value) if isinstance(value, list) else value
            if item.get("source"):
                sources[f.name] = item["source"]
    return cls(**kwargs, sources=sources)


def dumps(arch: Architecture) -> str:
    return json.dumps(arch.to_json())


# --- a config alone (a trace written before descriptions were kept) ---------------------------


def _first(config: dict, *keys: str) -> tuple[Any, str]:
    for key in keys:
        if config.get(key) is not None:
            return config[key], key
    return None, ""


def from_config(
    config: dict, name: str = "",
    why: str = "a trace written before neuroweb kept the description",
) -> Architecture:
    """What a config alone says (`why`: an old trace kept only that, a model whose weights are
    elsewhere). Facts that only the modules can tell (where the norms are, whether the MLP is
    gated, the embedding's scale) are unknown."""
    src: dict[str, str] = {}

    def get(fact: str, *keys: str, cast=int):
        value, key = _first(config, *keys)
        if key:
            src[fact] = f"config.{key}"
        return None if value is None else cast(value)

    heads = get("heads", "num_attention_heads", "n_head")
    kv_heads = get("kv_heads", "num_key_value_heads", "num_kv_heads")  # None: unknown, not heads
    width = get("width", "hidden_size", "n_embd", "d_model")
    head_dim = get("head_dim", "head_dim")
    if head_dim is None and width and heads:
        head_dim, src["head_dim"] = width // heads, "config.hidden_size / num_attention_heads"
    act, act_key = _first(config, "hidden_activation", "hidden_act", "activation_function")
    mlp = Mlp(gated=None, activation=CONFIG_ACTIVATIONS.get(act, act) if act else None,
              width=get("mlp_width", "intermediate_size", "n_inner", "ffn_dim"),
              sources={"activation": f"config.{act_key}"} if act_key else {})  # fmt: skip
    block_src = {k: src[k] for k in ("heads", "kv_heads", "head_dim") if k in src}
    types = config.get("layer_types") or []
    window = config.get("sliding_window")
    blocks = int(_first(config, "num_hidden_layers", "n_layer")[0])
    no_rope = config.get("no_rope_layers") or []  # per block: 1 uses RoPE, 0 does not
    block = tuple(
        Block(attention=("sliding" if i < len(types) and types[i] == "sliding_attention"
                         else "global" if i < len(types) else None),
              window=window if i < len(types) and types[i] == "sliding_attention" else None,
              heads=heads, kv_heads=kv_heads, head_dim=head_dim, scale=None,
              softcap=config.get("attn_logit_softcapping"), qk_norm=None, attn_bias=(),
              steps=(), parallel=False, mlp=mlp,
              rope=bool(no_rope[i]) if i < len(no_rope) else None,
              sources={**block_src, "rope": f"config.no_rope_layers[{i}] (1: RoPE)"}
              if i < len(no_rope) else block_src)
        for i in range(blocks)
    )  # fmt: skip
    rope = config.get("rope_parameters") or {}
    theta = _rope_theta(rope)
    return Architecture(
        name=name, family=config.get("model_type"), blocks=blocks, width=width,
        vocab=get("vocab", "vocab_size"),
        context=get("context", "max_position_embeddings", "n_positions", "n_ctx"),
        positions="RoPE" if theta else None, rope_theta=theta, block=block, embedding=None,
        embed_scale=None, final_norm=None, tied=config.get("tie_word_embeddings"),
        final_softcap=config.get("final_logit_softcapping"), chat_template=None,
        notes=(f"described from the model's config alone ({why}): what only the modules tell "
               "is unknown",),
        sources={**src, "rope_theta": "config.rope_parameters"} if theta else src,
    )  # fmt: skip


def _rope_theta(rope: dict) -> dict[str, float]:
    """rope_parameters → θ per layer type: {"all": θ}, or {"full_attention": θ, ...} where the
    config keeps one dict per layer type (Gemma 3)."""
    if "rope_theta" in rope:
        return {"all": float(rope["rope_theta"])}
    return {kind: float(p["rope_theta"]) for kind, p in rope.items()
            if isinstance(p, dict) and p.get("rope_theta") is not None}  # fmt: skip


def with_notes(arch: Architecture, *notes: str) -> Architecture:
    return replace(arch, notes=tuple(dict.fromkeys((*arch.notes, *notes))))


def ranges(indices: list[int]) -> str:
    """[0, 1, 2, 5] → "0–2, 5"."""
    out, start = [], None
    for n, i in enumerate(indices):
        if start is None:
            start = i
        if n + 1 == len(indices) or indices[n + 1] != i + 1:
            out.append(f"{start}" if start == i else f"{start}–{i}")
            start = None
    return ", ".join(out)
