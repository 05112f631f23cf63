"""What a decoder-only transformer is made of, read from its Hugging Face config.

The architecture scene draws these facts, so they come from the model actually loaded (its
`config.to_dict()`, which traces also keep), never from a picture of one model. Plain data, no
torch: the window process has none.
"""

from dataclasses import dataclass

# Families whose MLP is gated (act(gate) * up, then down), and those whose attention projections
# carry a bias; a config does not say either outright.
GATED_FAMILIES = {"llama", "mistral", "mixtral", "qwen2", "qwen3", "gemma", "gemma2", "gemma3",
                  "olmo", "olmo2", "granite", "phi3", "smollm3", "cohere"}  # fmt: skip
QKV_BIAS_FAMILIES = {"qwen2", "gpt2", "gpt_neox", "gptj", "bloom", "opt", "starcoder2"}
ACTIVATIONS = {"silu": "SiLU", "swish": "SiLU", "gelu": "GELU", "gelu_new": "GELU (tanh)",
               "gelu_pytorch_tanh": "GELU (tanh)", "gelu_fast": "GELU (tanh)", "relu": "ReLU",
               "quick_gelu": "GELU (quick)"}  # fmt: skip


@dataclass(frozen=True)
class Architecture:
    family: str  # the config's model_type: "llama", "gpt2", "qwen2", ...
    blocks: int
    width: int  # d_model, the residual stream's size
    mlp_width: int  # d_ff
    heads: int  # query heads
    kv_heads: int  # key/value heads (fewer than `heads` under grouped-query attention)
    head_dim: int
    vocab: int
    context: int  # positions the model was trained for
    norm: str  # "RMSNorm" | "LayerNorm"
    positions: str  # "RoPE" (rotary, inside attention) | "learned" (added to the embedding)
    activation: str  # "SiLU", "GELU (tanh)", ...
    gated: bool  # the MLP is act(gate(x)) * up(x) → down (SwiGLU for SiLU)
    qkv_bias: bool
    tied: bool  # the unembedding reuses the token embedding matrix
    rope_theta: float = 0.0  # RoPE's base, when positions == "RoPE"

    @property
    def grouped(self) -> bool:
        """Grouped-query attention: several query heads share each key/value head."""
        return self.kv_heads < self.heads

    @property
    def group_size(self) -> int:
        return self.heads // self.kv_heads

    @property
    def mlp(self) -> str:
        """The MLP's name as papers write it."""
        if not self.gated:
            return f"{self.activation.split()[0]} MLP"
        return {"SiLU": "SwiGLU", "GELU": "GeGLU"}.get(self.activation.split()[0], "gated MLP")

    @property
    def mlp_steps(self) -> tuple[str, ...]:
        """The MLP's stages in order, with their shapes."""
        d, f, act = self.width, self.mlp_width, self.activation
        if self.gated:
            return (f"gate {d}→{f}", f"up {d}→{f}", f"{act}(gate) × up", f"down {f}→{d}")
        return (f"up {d}→{f}", act, f"down {f}→{d}")

    def kv_group(self, head: int) -> int:
        """The key/value head that query `head` reads (transformers' repeat_kv order)."""
        return head // self.group_size


def _first(config: dict, *keys: str, default=None):
    for key in keys:
        if config.get(key) is not None:
            return config[key]
    return default


def describe(config: dict) -> Architecture:
    """The architecture of the model whose `config.to_dict()` this is."""
    family = str(config.get("model_type", "unknown"))
    width = int(_first(config, "hidden_size", "n_embd", "d_model"))
    heads = int(_first(config, "num_attention_heads", "n_head"))
    kv_heads = int(_first(config, "num_key_value_heads", default=heads))
    rope = config.get("rope_parameters") or {}
    rope_theta = float(_first(rope, "rope_theta", default=_first(config, "rope_theta", default=0)))
    learned = family in ("gpt2", "gpt_neo", "opt", "gpt_bigcode", "biogpt")
    activation = str(_first(config, "hidden_act", "activation_function", default="gelu"))
    return Architecture(
        family=family,
        blocks=int(_first(config, "num_hidden_layers", "n_layer")),
        width=width,
        mlp_width=int(_first(config, "intermediate_size", "n_inner", "ffn_dim",
                             default=4 * width)),  # fmt: skip
        heads=heads,
        kv_heads=kv_heads,
        head_dim=int(_first(config, "head_dim", default=width // heads)),
        vocab=int(config["vocab_size"]),
        context=int(_first(config, "max_position_embeddings", "n_positions", "n_ctx", default=0)),
        norm="RMSNorm" if "rms_norm_eps" in config else "LayerNorm",
        positions="learned" if learned else "RoPE",
        activation=ACTIVATIONS.get(activation, activation),
        gated=family in GATED_FAMILIES,
        qkv_bias=bool(config.get("attention_bias", family in QKV_BIAS_FAMILIES)),
        tied=bool(config.get("tie_word_embeddings", True)),
        rope_theta=rope_theta if not learned else 0.0,
    )
