"""Tiny random-initialised models of several families, built from configs (nothing is
downloaded), with what a test reads about each straight from its config and modules.

Sliding-window families get a window of 8 positions, so a chat-templated prompt (dozens of
tokens) really runs through the sliding mask; Gemma 2 softcaps its attention logits.
"""

import transformers

WINDOW = 8
_COMMON = dict(vocab_size=49152, hidden_size=32, intermediate_size=64, num_hidden_layers=3,
               num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
               bos_token_id=1, eos_token_id=2, pad_token_id=0)  # fmt: skip


def config(family: str) -> transformers.PretrainedConfig:
    c = _COMMON
    if family == "llama":
        return transformers.LlamaConfig(**c)
    if family == "qwen2":
        return transformers.Qwen2Config(**c)
    if family == "mistral":
        return transformers.MistralConfig(**c, sliding_window=WINDOW)
    if family == "phi3":
        return transformers.Phi3Config(**c)
    if family == "gemma2":
        return transformers.Gemma2Config(**c, head_dim=8, sliding_window=WINDOW,
                                         query_pre_attn_scalar=16)  # fmt: skip
    if family == "gemma3":  # five sliding blocks to one global, as the real ones
        return transformers.Gemma3TextConfig(
            **{**c, "num_hidden_layers": 6}, head_dim=8, sliding_window=WINDOW,
            query_pre_attn_scalar=16)  # fmt: skip
    if family == "qwen2_moe":  # block 0 dense, 1–2 routed with a shared expert
        return transformers.Qwen2MoeConfig(**c, num_experts=4, num_experts_per_tok=2,
                                           moe_intermediate_size=16, mlp_only_layers=[0],
                                           shared_expert_intermediate_size=24)  # fmt: skip
    if family == "mixtral":
        return transformers.MixtralConfig(**c, num_local_experts=4, num_experts_per_tok=2)
    if family == "smollm3":  # block 1 without RoPE (a NoPE layer), as config.no_rope_layers says
        return transformers.SmolLM3Config(**c, no_rope_layers=[1, 0, 1])
    if family == "cohere2":  # three sliding blocks with RoPE, then a global one without
        return transformers.Cohere2Config(**{**c, "num_hidden_layers": 4}, sliding_window=WINDOW)
    if family == "gpt2":
        return transformers.GPT2Config(vocab_size=49152, n_embd=32, n_layer=2, n_head=4,
                                       n_positions=256, bos_token_id=1, eos_token_id=2)  # fmt: skip
    raise KeyError(family)


FAMILIES = ("llama", "qwen2", "mistral", "phi3", "gemma2", "gemma3", "qwen2_moe", "mixtral",
            "smollm3", "gpt2")  # fmt: skip
