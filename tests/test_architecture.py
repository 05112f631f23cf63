"""The architecture scene: read from real configs (SmolLM2, tiny GPT-2 and Qwen2), laid out,
fed with attention, and drawn as a poster by `neuroweb snapshot`."""

from pathlib import Path

import numpy as np
import pygame
import pytest
import transformers

from tests.test_cli import _assert_user_error, neuroweb
from visualizer.anatomy import COLUMNS, ROWS, Anatomy
from visualizer.architecture import describe
from visualizer.frame import Frame
from visualizer.render.diagram import Box, layout


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


def _arch(folder=None, config=None):
    config = config or transformers.AutoConfig.from_pretrained(folder).to_dict()
    return describe(config)


def _inside(box, region) -> bool:
    return (region.x - 1 <= box.x and box.x + box.w <= region.x + region.w + 1
            and region.y - 1 <= box.y and box.y + box.h <= region.y + region.h + 1)  # fmt: skip


@pytest.mark.parametrize("size", [(1920, 1080), (3840, 2160), (1280, 720)])
def test_the_smollm2_layout_folds_30_blocks_into_readable_columns(smollm2_folder, size):
    d = layout(_arch(smollm2_folder), size)
    blocks = d.of("block")
    assert [b.label for b in blocks] == [str(i) for i in range(30)]
    assert d.columns == 3 and min(b.h for b in blocks) >= 6.5 * d.unit  # legible: ≥ 70 px at 1080p
    heads = d.of("head")
    assert len(heads) == 30 * 9 and {h.group for h in heads} == {0, 1, 2}
    assert all(_inside(h, next(b for b in blocks if b.block == h.block)) for h in heads)
    assert len(d.of("detail_head")) == 9
    stack = d.region("stack")
    assert all(_inside(b, stack) for b in blocks)
    for a in blocks:  # no two tiles overlap
        for b in blocks:
            if a is not b:
                assert a.x + a.w <= b.x or b.x + b.w <= a.x or a.y + a.h <= b.y or b.y + b.h <= a.y
    assert {b.label for b in d.of("norm")} == {"RMS"}
    assert {b.label for b in d.of("mlp")} == {"SwiGLU"}
    assert "RoPE" in d.region("positions").label
    notes = " ".join(b.label for b in d.of("note"))
    assert "9 query heads share 3 key/value heads" in notes and "gate 576→1536" in notes


def test_the_gpt2_layout_has_learned_positions_layernorm_and_no_groups(tiny_gpt2_dir):
    d = layout(_arch(tiny_gpt2_dir), (1920, 1080))
    assert d.columns == 1 and len(d.of("block")) == 2
    assert len(d.of("head")) == 2 * 4 and {h.group for h in d.of("head")} == {0, 1, 2, 3}
    assert {b.label for b in d.of("norm")} == {"LN"}
    assert {b.label for b in d.of("mlp")} == {"GELU MLP"}
    assert d.region("positions").label.startswith("+ learned positions 128 × 32")
    assert "4 heads, each with its own keys and values" in " ".join(b.label for b in d.of("note"))


def test_the_qwen2_layout_groups_four_heads_per_kv_head():
    config = transformers.Qwen2Config(
        vocab_size=1000, hidden_size=64, intermediate_size=160, num_hidden_layers=4,
        num_attention_heads=8, num_key_value_heads=2, max_position_embeddings=256,
    ).to_dict()  # fmt: skip
    d = layout(_arch(config=config), (1920, 1080))
    heads = [h for h in d.of("head") if h.block == 0]
    assert [h.group for h in heads] == [0, 0, 0, 0, 1, 1, 1, 1]
    gaps = [b.x - (a.x + a.w) for a, b in zip(heads, heads[1:], strict=False)]
    assert gaps[3] > 2 * max(gaps[:3])  # the groups stand apart
    assert "(with bias)" in " ".join(b.label for b in d.of("note"))


def _snapshot(tmp_path, prompt: str, name: str, *extra: str) -> Path:
    out = tmp_path / name
    result = neuroweb("snapshot", "--prompt", prompt, "--tokens", "4", "--temperature", "0",
                      "--out", str(out), *extra)  # fmt: skip
    assert result.returncode == 0, result.stderr
    return out


def test_a_4k_poster_shows_each_prompt_s_own_attention(smollm2_folder, tmp_path):
    """`neuroweb snapshot` runs the real SmolLM2 and draws its architecture at 3840×2160; two
    prompts give two posters that differ where the heads' heatmaps are."""
    a = _snapshot(tmp_path, "Name a colour.", "a.png")
    b = _snapshot(tmp_path, "Count from one to ten, please, slowly and clearly.", "b.png")
    images = [pygame.surfarray.array3d(pygame.image.load(p)) for p in (a, b)]  # [w, h, 3]
    assert all(image.shape == (3840, 2160, 3) for image in images)
    d = layout(_arch(smollm2_folder), (3840, 2160))
    heads = d.of("head") + d.of("detail_head")

    def crop(image, box):
        return image[int(box.x) : int(box.x + box.w), int(box.y) : int(box.y + box.h)].astype(int)

    assert all(crop(images[0], h).max() > 60 for h in heads)  # every heatmap is drawn and lit
    differing = [h for h in heads if np.abs(crop(images[0], h) - crop(images[1], h)).mean() > 3]
    assert len(differing) > len(heads) // 2
    facts = Box("facts", 0, 50, 2400, 80)  # the line under the title: the same model
    assert np.abs(crop(images[0], facts) - crop(images[1], facts)).max() == 0


def test_a_poster_of_the_web_scene_and_bad_snapshot_arguments(tiny_llama_dir, tmp_path):
    web = _snapshot(tmp_path, "Hi", "web.png", "--scene", "web", "--size", "640x360",
                    "--model", str(tiny_llama_dir))  # fmt: skip
    assert pygame.image.load(web).get_size() == (640, 360)
    _assert_user_error(neuroweb("snapshot", "--prompt", "Hi", "--out", str(tmp_path / "x.jpg")),
                       "expected a .png")  # fmt: skip
    _assert_user_error(neuroweb("snapshot", "--prompt", "Hi", "--out",
                                str(tmp_path / "no" / "x.png")), "does not exist")  # fmt: skip
    _assert_user_error(neuroweb("snapshot", "--prompt", "Hi", "--out", str(tmp_path / "x.png"),
                                "--scene", "tower"), "--scene: invalid choice")  # fmt: skip
    assert sorted(p.name for p in tmp_path.iterdir()) == ["web.png"]


def test_head_maps_put_each_token_s_attention_in_its_row():
    """The newest token's row is the bottom one; its columns end at its own position; the row
    is scaled by its largest weight after the sink."""
    anatomy = Anatomy()
    rng = np.random.default_rng(0)
    for index in range(5):
        attn = rng.random((2, 3, index + 1)).astype(np.float32)  # [L, H, positions 0..index]
        attn /= attn.sum(-1, keepdims=True)
        hidden = rng.standard_normal((3, 8)).astype(np.float32)
        frame = Frame(index, 7, "x", False, 0, hidden, rng.random((2, 16), np.float32), attn,
                      np.arange(10), np.full(10, 0.1, np.float32), ("x",) * 10, 1.0)  # fmt: skip
        anatomy.ingest(frame)
    maps = anatomy.maps
    assert maps.shape == (2, 3, ROWS, COLUMNS)
    newest = maps[:, :, -1, -5:]
    expected = attn / attn[:, :, 1:].max(-1, keepdims=True)
    assert np.allclose(newest, np.minimum(expected, 1))
    assert not maps[:, :, -1, :-5].any() and not maps[:, :, :-5].any()  # nothing before
    assert (maps[:, :, -2, -1] == 0).all()  # the token before cannot see the newest position
