"""The architecture read from real configs: SmolLM2 (Llama), and tiny GPT-2 and Qwen2 models."""

import transformers

from visualizer.architecture import describe


def test_smollm2_is_a_llama_with_rope_gqa_rmsnorm_and_swiglu(smollm2_folder):
    arch = describe(transformers.AutoConfig.from_pretrained(smollm2_folder).to_dict())
    assert (arch.family, arch.blocks, arch.width, arch.mlp_width) == ("llama", 30, 576, 1536)
    assert (arch.heads, arch.kv_heads, arch.group_size, arch.head_dim) == (9, 3, 3, 64)
    assert arch.grouped and [arch.kv_group(h) for h in range(9)] == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    assert (arch.norm, arch.positions, arch.mlp, arch.activation) == ("RMSNorm", "RoPE",
                                                                      "SwiGLU", "SiLU")  # fmt: skip
    assert arch.mlp_steps == ("gate 576→1536", "up 576→1536", "SiLU(gate) × up", "down 1536→576")
    assert arch.tied and not arch.qkv_bias and arch.rope_theta == 100000.0
    assert arch.vocab == 49152 and arch.context == 8192


def test_gpt2_has_learned_positions_layernorm_gelu_and_full_heads(tiny_gpt2_dir):
    arch = describe(transformers.AutoConfig.from_pretrained(tiny_gpt2_dir).to_dict())
    assert (arch.family, arch.blocks, arch.width, arch.mlp_width) == ("gpt2", 2, 32, 128)
    assert (arch.heads, arch.kv_heads) == (4, 4) and not arch.grouped
    assert (arch.norm, arch.positions, arch.mlp) == ("LayerNorm", "learned", "GELU MLP")
    assert arch.mlp_steps == ("up 32→128", "GELU (tanh)", "down 128→32")
    assert arch.qkv_bias and arch.rope_theta == 0.0 and arch.context == 128


def test_qwen2_is_rope_rmsnorm_swiglu_with_qkv_bias():
    config = transformers.Qwen2Config(
        vocab_size=1000, hidden_size=64, intermediate_size=160, num_hidden_layers=4,
        num_attention_heads=8, num_key_value_heads=2, max_position_embeddings=256,
    )  # fmt: skip
    arch = describe(config.to_dict())
    assert (arch.family, arch.blocks, arch.heads, arch.kv_heads, arch.group_size) == (
        "qwen2", 4, 8, 2, 4)  # fmt: skip
    assert (arch.norm, arch.positions, arch.mlp) == ("RMSNorm", "RoPE", "SwiGLU")
    assert arch.qkv_bias and arch.mlp_steps[-1] == "down 160→64"
