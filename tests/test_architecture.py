"""The architecture scene: described from the loaded model (the real SmolLM2 and tiny models of
other families), laid out, fed with attention, and drawn as a poster by `neuroweb snapshot`."""

from pathlib import Path

import numpy as np
import pygame
import pytest
import transformers

from tests.synthetic import synthetic_frame
from tests.test_cli import _assert_user_error, neuroweb, neuroweb_here
from tests.tolerance import drift
from visualizer.anatomy import COLUMNS, ROWS, Anatomy
from visualizer.architecture import Architecture, from_config
from visualizer.measures import EPS
from visualizer.model.load import load_model
from visualizer.render.diagram import Box, facts_line, layout, positions_label, up_close
from visualizer.render.layers.architecture import focus_numbers, legend


def test_smollm2_is_a_llama_with_rope_gqa_rmsnorm_and_swiglu(smollm2):
    arch = smollm2.architecture
    assert (arch.name, arch.family, arch.blocks, arch.width) == ("SmolLM2-135M-Instruct",
                                                                 "llama", 30, 576)  # fmt: skip
    assert (arch.heads, arch.kv_heads, arch.group_size, arch.head_dim) == (9, 3, 3, 64)
    assert arch.grouped and [arch.kv_group(h) for h in range(9)] == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    assert arch.mlp_width == 1536 and arch.first.mlp.name == "SwiGLU"
    assert [(s.kind, s.label) for s in arch.first.steps] == [
        ("norm", "RMSNorm"), ("attention", "attention"), ("add", "⊕"), ("norm", "RMSNorm"),
        ("mlp", "SwiGLU"), ("add", "⊕")]  # fmt: skip
    assert arch.positions == "RoPE" and arch.rope_theta == {"all": 100000.0}
    assert arch.tied and arch.embed_scale == 1.0 and arch.final_norm == "RMSNorm"
    assert arch.vocab == 49152 and arch.context == 8192 and arch.chat_template
    assert not arch.sliding and not arch.moe and not arch.notes
    assert Architecture.from_json(arch.to_json()) == arch


@pytest.fixture(scope="module")
def arch_of(family_dir):
    cache = {}

    def get(family: str) -> Architecture:
        if family not in cache:
            cache[family] = load_model(str(family_dir(family))).architecture
        return cache[family]

    return get


def _inside(box, region) -> bool:
    return (region.x - 1 <= box.x and box.x + box.w <= region.x + region.w + 1
            and region.y - 1 <= box.y and box.y + box.h <= region.y + region.h + 1)  # fmt: skip


PART_KINDS = {"block", "head", "norm", "attention", "add", "mlp", "expert", "badge", "meter",
              "embedding", "positions", "final_norm", "unembedding", "softmax"}  # fmt: skip


def _assert_sourced(d) -> None:
    """Every box of a model part names the module or config key it stands for, and so does
    every line of the up-close text of every block: each of a line's sources, joined by "; "
    (the attention line's "heads; attn_bias" is never empty as a whole, even with both
    missing)."""
    parts = [b for b in d.boxes if b.kind.removeprefix("detail_") in PART_KINDS]
    assert parts and all(b.source for b in parts), [b for b in parts if not b.source][:3]
    for block in range(d.arch.blocks):
        lines = up_close(d.arch, block)
        assert all(all(source.split("; ")) for _, source in lines), (block, lines)


@pytest.mark.parametrize("size", [(1920, 1080), (3840, 2160), (1280, 720)])
def test_the_smollm2_layout_folds_30_blocks_into_readable_columns(smollm2, size):
    d = layout(smollm2.architecture, size)
    blocks = d.of("block")
    assert [b.label for b in blocks] == [str(i) for i in range(30)]
    assert d.columns == 3 and min(b.h for b in blocks) >= 6.5 * d.unit  # legible: ≥ 70 px at 1080p
    heads = d.of("head")
    assert len(heads) == 30 * 9 and {h.group for h in heads} == {0, 1, 2}
    assert all(_inside(h, next(b for b in blocks if b.block == h.block)) for h in heads)
    assert len([h for h in d.of("detail_head") if h.block == 7]) == 9
    stack = d.region("stack")
    assert all(_inside(b, stack) for b in blocks)
    for a in blocks:  # no two tiles overlap
        for b in blocks:
            if a is not b:
                assert a.x + a.w <= b.x or b.x + b.w <= a.x or a.y + a.h <= b.y or b.y + b.h <= a.y
    assert {b.label for b in d.of("norm")} == {"RMS"}
    assert {b.label for b in d.of("mlp")} == {"SwiGLU"}
    assert not d.of("badge") and not d.of("expert")  # all global, all dense
    assert d.region("positions").label == ("RoPE θ=100,000: positions rotate q and k inside "
                                           "every attention")  # fmt: skip
    notes = " ".join(line for line, _ in up_close(d.arch, 3))
    assert "9 query heads share 3 key/value heads" in notes
    assert "gate_proj 576→1,536, up_proj 576→1,536, SiLU(gate_proj) × up_proj" in notes
    assert "RMSNorm (input_layernorm) → attention (model.layers.3.self_attn)" in notes
    _assert_sourced(d)


def test_the_gpt2_layout_has_learned_positions_layernorm_and_no_groups(tiny_gpt2):
    d = layout(tiny_gpt2.architecture, (1920, 1080))
    assert d.columns == 1 and len(d.of("block")) == 2
    assert len(d.of("head")) == 2 * 4 and {h.group for h in d.of("head")} == {0, 1, 2, 3}
    assert {b.label for b in d.of("norm")} == {"LN"}
    assert {b.label for b in d.of("mlp")} == {"GELU (tanh) MLP"}
    assert d.region("positions").label.startswith("+ learned positions 128 × 32")
    assert " · LayerNorm ×2 a block · learned positions · " in facts_line(d.arch)
    notes = " ".join(line for line, _ in up_close(d.arch, 0))
    assert "4 heads, each with its own keys and values" in notes
    assert "c_fc 32→128, GELU (tanh), c_proj 128→32" in notes
    _assert_sourced(d)


def test_the_qwen2_layout_groups_heads_by_kv_head_and_names_the_biases(arch_of):
    d = layout(arch_of("qwen2"), (1920, 1080))
    heads = [h for h in d.of("head") if h.block == 0]
    assert [h.group for h in heads] == [0, 0, 1, 1]
    gaps = [b.x - (a.x + a.w) for a, b in zip(heads, heads[1:], strict=False)]
    assert gaps[1] > 2 * max(gaps[0], gaps[2])  # the groups stand apart
    assert "(bias on q_proj, k_proj, v_proj)" in up_close(d.arch, 0)[0][0]
    _assert_sourced(d)


def test_gemma3_is_drawn_with_its_sandwich_norms_qk_norm_windows_and_two_thetas(arch_of):
    arch = arch_of("gemma3")
    d = layout(arch, (1920, 1080))
    block0 = [b.label for b in d.of("norm") + d.of("attention") + d.of("add") + d.of("mlp")
              if b.block == 0]  # fmt: skip
    chips = [b for b in d.boxes if b.block == 0 and b.kind in ("norm", "attention", "add", "mlp")]
    assert [c.label for c in sorted(chips, key=lambda c: c.x)] == [
        "RMS", "attn·qk", "RMS", "+", "RMS", "GeGLU", "RMS", "+"]  # fmt: skip
    assert len(block0) == 8
    badges = {b.block: b.label for b in d.of("badge")}
    assert badges == {0: "window 8", 1: "window 8", 2: "window 8", 3: "window 8", 4: "window 8",
                      5: "global"}  # fmt: skip
    assert positions_label(arch) == ("RoPE inside attention: θ=1,000,000 in global blocks, "
                                     "θ=10,000 in sliding blocks")  # fmt: skip
    assert "× 5.657" in d.region("embedding").label  # √32, Gemma's embedding scale
    sliding, full = (" ".join(line for line, _ in up_close(arch, i)) for i in (0, 5))
    assert "θ=10,000" in sliding and "sees the last 8 positions" in sliding
    assert "θ=1,000,000" in full and "sees every position" in full
    assert "q, k normed: RMSNorm over each head (8)" in full
    assert "RMSNorm (post_attention_layernorm) → ⊕" in full
    assert "→ RMSNorm (post_feedforward_layernorm) → ⊕" in full
    assert "× 0.25)" in full  # query_pre_attn_scalar 16, not head_dim 8
    _assert_sourced(d)


def test_gemma2_softcaps_are_stated(arch_of):
    arch = arch_of("gemma2")
    d = layout(arch, (1920, 1080))
    assert "softcapped at 50" in up_close(arch, 0)[1][0]
    assert "logits softcapped at 30" in d.region("softmax").label


def test_an_moe_block_shows_its_experts_and_a_dense_block_none(arch_of):
    arch = arch_of("qwen2_moe")
    d = layout(arch, (1920, 1080))
    experts = d.of("expert")
    assert {b.block for b in experts} == {1, 2} and len(experts) == 2 * 4
    mlp = {b.block: b.label for b in d.of("mlp")}
    assert mlp == {0: "SwiGLU", 1: "MoE 4", 2: "MoE 4"}
    text = up_close(arch, 1)[-1][0]
    assert "router picks 2 of 4 experts" in text and "shared_expert" in text
    assert "experts in 2 of 3 blocks" in facts_line(arch)
    assert "MoE blocks (1–2)" in d.region("footer").label
    _assert_sourced(d)


def test_a_config_alone_draws_unknown_where_it_cannot_tell(smollm2_folder):
    config = transformers.AutoConfig.from_pretrained(smollm2_folder).to_dict()
    arch = from_config(config, "old trace")
    d = layout(arch, (1920, 1080))
    assert {b.label for b in d.of("unknown")} == {"steps unknown"}
    assert arch.first.mlp.gated is None and arch.final_norm is None and arch.tied is True
    assert "described from the model's config alone" in d.region("footer").label
    assert d.region("final_norm").label == "final norm (kind unknown)"


def test_rope_is_stated_per_block_from_each_block_s_own_attention(arch_of):
    """SmolLM3's block 1 skips RoPE (its config.no_rope_layers); Cohere 2's global block skips
    it with nothing in its config to say so. Each is read from what that block's attention did
    in the probe pass (its query against q_proj's output), never from the family."""
    smol, cohere = arch_of("smollm3"), arch_of("cohere2")
    assert [b.rope for b in smol.block] == [True, False, True]
    assert [b.rope for b in cohere.block] == [True, True, True, False]
    assert "q_proj's output (the same at every position" in smol.block[1].sources["rope"]
    assert "q_proj's output (turned at positions" in cohere.block[0].sources["rope"]
    assert positions_label(smol).endswith("positions rotate q and k in blocks 0, 2; "
                                          "not in block 1")  # fmt: skip
    assert positions_label(cohere).endswith("in blocks 0–2; not in block 3")
    assert " · RoPE in 2 of 3 blocks · " in facts_line(smol)
    nope, rope = (" ".join(line for line, _ in up_close(smol, i)) for i in (1, 0))
    assert "no RoPE in this block: q and k are not rotated" in nope and "θ=" not in nope
    assert "RoPE (θ=" in rope and "rotates q and k" in rope
    assert Architecture.from_json(smol.to_json()) == smol
    _assert_sourced(layout(smol, (1920, 1080)))
    # a description kept before this fact was: unknown, not "every attention"
    old = smol.to_json()
    for block in old["block"]:
        del block["rope"]
    assert "(in which blocks: unknown)" in positions_label(Architecture.from_json(old))


def test_a_config_alone_says_rope_and_kv_heads_only_where_it_says_them(family_dir):
    """From a config: RoPE per block from config.no_rope_layers, else unknown; key/value heads
    from num_key_value_heads, else unknown (never the query heads' count)."""
    smol = transformers.AutoConfig.from_pretrained(family_dir("smollm3")).to_dict()
    arch = from_config(smol)
    assert [b.rope for b in arch.block] == [True, False, True]
    assert arch.block[1].sources["rope"] == "config.no_rope_layers[1] (1: RoPE)"
    llama = transformers.AutoConfig.from_pretrained(family_dir("llama")).to_dict()
    assert positions_label(from_config(llama)).endswith("(in which blocks: unknown)")
    del llama["num_key_value_heads"]
    arch = from_config(llama)
    assert arch.kv_heads is None and not arch.grouped
    assert "4 heads, K/V heads unknown" in facts_line(arch)
    text = " ".join(line for line, _ in up_close(arch, 0))
    assert "key/value heads: unknown" in text and "its own keys and values" not in text
    assert {h.group for h in layout(arch, (1920, 1080)).of("head")} == {-1}


def _poster(lm, tmp_path, prompt: str, name: str) -> Path:
    """The architecture poster of `lm`'s answer to `prompt` (4 tokens, greedy), drawn by
    `neuroweb snapshot --trace` at 3840×2160 from a trace of it."""
    from visualizer.config import CaptureSettings, GenerationSettings
    from visualizer.model.generate import generate_frames
    from visualizer.trace import write_trace

    frames = list(generate_frames(lm, prompt, GenerationSettings(max_tokens=4, temperature=0.0),
                                  CaptureSettings()))  # fmt: skip
    trace = tmp_path / f"{name}.npz"
    write_trace(trace, frames, {"model": lm.architecture.name, "prompt": prompt,
                                "architecture": lm.architecture.to_json()})  # fmt: skip
    out = tmp_path / f"{name}.png"
    result = neuroweb("snapshot", "--trace", str(trace), "--out", str(out))
    assert result.returncode == 0, result.stderr
    return out


def _snapshot(tmp_path, prompt: str, name: str, *extra: str) -> Path:
    out = tmp_path / name
    result = neuroweb_here("snapshot", "--prompt", prompt, "--tokens", "4", "--temperature",
                           "0", "--out", str(out), *extra)  # fmt: skip
    assert result.returncode == 0, result.stderr
    return out


def test_a_4k_poster_shows_each_prompt_s_own_attention(smollm2, tmp_path):
    """`neuroweb snapshot` draws the real SmolLM2's architecture at 3840×2160; two prompts
    give two posters that differ where the heads' heatmaps are. The runs are this process's
    model's (the `--prompt` path is `test_a_poster_of_the_web_scene…`'s), saved as traces."""
    a, b = (_poster(smollm2, tmp_path, prompt, name) for prompt, name in (
        ("Name a colour.", "a"), ("Count from one to ten, please, slowly and clearly.", "b")))
    images = [pygame.surfarray.array3d(pygame.image.load(p)) for p in (a, b)]  # [w, h, 3]
    assert all(image.shape == (3840, 2160, 3) for image in images)
    d = layout(smollm2.architecture, (3840, 2160))
    heads = d.of("head")

    def crop(image, box):
        return image[int(box.x) : int(box.x + box.w), int(box.y) : int(box.y + box.h)].astype(int)

    assert all(crop(images[0], h).max() > 25 for h in heads)  # every heatmap is drawn
    # and most are lit (a head whose attention goes to positions older than the 24 shown,
    # the sink among them, is rightly dim: the weights are not rescaled)
    assert sum(crop(images[0], h).max() > 60 for h in heads) > 0.9 * len(heads)
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
    """The newest token's row is the bottom one; its columns end at its own position; the
    weights are as they are."""
    anatomy = Anatomy()
    rng = np.random.default_rng(0)
    for index in range(5):
        attn = rng.random((2, 3, index + 1)).astype(np.float32)  # [L, H, positions 0..index]
        attn /= attn.sum(-1, keepdims=True)
        hidden = rng.standard_normal((3, 8)).astype(np.float32)
        frame = synthetic_frame(index, hidden, rng.random((2, 16), np.float32), attn)
        anatomy.ingest(frame)
    maps = anatomy.maps
    assert maps.shape == (2, 3, ROWS, COLUMNS)
    newest = maps[:, :, -1, -5:]
    assert np.array_equal(newest, attn)  # float32 weights copied into a float32 map
    assert not maps[:, :, -1, :-5].any() and not maps[:, :, :-5].any()  # nothing before
    assert (maps[:, :, -2, -1] == 0).all()  # the token before cannot see the newest position


def _frame(index, hidden, write=None):
    layers = hidden.shape[0] - 1
    return synthetic_frame(index, hidden, np.ones((layers, 4)), np.full((layers, 2, index + 1),
                           1 / (index + 1)), mlp_write=write)  # fmt: skip


def test_architecture_meters_are_the_measured_norms():
    """The bars are ‖h‖ on this token's log scale, ‖write‖ ÷ ‖h‖ and ‖Δh‖ ÷ ‖h_in‖, and the
    numbers printed are the same, unrounded and not eased."""
    hidden = np.array([[1.0, 0], [3, 0], [3, 4], [30, 40]])  # ‖h‖ = 1, 3, 5, 50
    write = np.array([[1.0, 0], [0, 2], [0, 0]])
    anatomy = Anatomy()
    anatomy.ingest(_frame(0, hidden, write))
    anatomy.advance(10.0)
    # float64 norms of whole numbers whose norms are whole: exact
    assert np.array_equal(anatomy.norms, [1, 3, 5, 50])
    # ratios over ‖h‖ + measures.EPS (1e-6, so off by at most 1e-6 relative for ‖h‖ ≥ 1) in
    # float64, a few roundings; the bars then float32, eased all the way (exp(-83) left)
    ratio = EPS + drift(np.float64, 4)
    bars = ratio + drift(np.float32, 4)
    assert np.allclose(anatomy.residual, np.log([3, 5, 50]) / np.log(50), rtol=bars, atol=0)
    assert np.allclose(anatomy.shares, [1 / 3, 2 / 5, 0], rtol=ratio, atol=0)
    assert np.allclose(anatomy.mlp, [1 / 3, 0.4, 0], rtol=bars, atol=0)
    updates = [2.0, 4 / 3, np.linalg.norm([27, 36]) / 5]  # 9.0 is clipped to a full glow
    assert np.allclose(anatomy.updates, updates, rtol=ratio, atol=0)
    assert np.allclose(anatomy.update, [1, 1, 1], rtol=bars, atol=0)
    # the up-close line names the ‖h‖ each number is over: block 1 reads ‖h_in‖ = 3, writes
    # ‖Δh‖ = 4 (‖h_out‖ = 5), so 4 ÷ 3, not ÷ 5
    assert focus_numbers(anatomy, 1) == ("‖Δh‖ ÷ ‖h_in‖ = 1.33; ‖h_in‖ = 3, ‖h_out‖ = 5; MLP "
                                         "wrote 40.0% of ‖h_out‖")  # fmt: skip
    assert "‖Δh‖ ÷ ‖h_in‖" in " ".join(legend(anatomy.norms))


def test_the_block_up_close_is_the_most_unusual_update():
    """Block 0's update is always the largest; the block in focus is the one whose update is
    furthest above its own running mean, and that ratio is what the title prints."""
    anatomy = Anatomy()
    calm = np.array([[1.0, 0], [11, 0], [11.5, 0], [12, 0]])  # updates 10, ~0.045, ~0.043
    for i in range(20):
        anatomy.ingest(_frame(i, calm))
    # each update over its running mean (the same number) + measures.EPS: 1 − EPS ÷ update
    below = EPS / anatomy.updates.min() + drift(np.float64, 2 * 20)  # 20 tokens of means
    assert np.all(np.abs(anatomy.surprise - 1) <= below)
    # no block stands out, and the focus is still the most surprising one (block 0 by a hair:
    # EPS weighs least on its large update); a focus that is always the last block, which the
    # jump below cannot tell, fails here
    assert anatomy.focus == int(np.argmax(anatomy.surprise))
    jump = calm.copy()
    jump[3] = [11.5, 2.0]  # block 2 now writes ‖Δh‖ = 2 into a stream of 11.5
    anatomy.ingest(_frame(20, jump))
    assert anatomy.focus == 2
    mean = 0.5 / 11.5  # 4×, within EPS over the running mean and float64's roundings
    rel = EPS / mean + drift(np.float64, 2 * 21)
    assert anatomy.surprise[2] == pytest.approx((2 / 11.5) / mean, rel=float(rel), abs=0)
    assert anatomy.updates[0] > anatomy.updates[2]  # not the largest update: the most unusual


@pytest.mark.parametrize("size", [(1280, 720), (1920, 1080), (3840, 2160)],
                         ids=lambda s: f"{s[0]}x{s[1]}")  # fmt: skip
def test_at_a_desk_the_block_up_close_says_every_step_inside_the_safe_area(size):
    """SmolLM2's block up close at a desk, mid-answer with nothing of the chrome beside it:
    all five notes (attention, RoPE, the shared K/V heads, the output projection, the MLP)
    are drawn in full, no longer cut to four by the safe area's narrower column."""
    from tests import showcase
    from visualizer.config import load_settings
    from visualizer.gl.context import HeadlessTarget
    from visualizer.gl.shaders import ShaderLibrary
    from visualizer.render.camera import Camera
    from visualizer.render.layers.architecture import ArchitectureView
    from visualizer.render.layers.layer import Kit, LayerInput
    from visualizer.render.layers.text import Painter

    settings, said = load_settings("default"), []
    scene, text = showcase.scene(settings.look), Painter.text

    def recorded(self, label, *args, **kwargs):
        said.append(label)
        return text(self, label, *args, **kwargs)

    target = HeadlessTarget(size)
    library = ShaderLibrary(target.ctx)
    painter = Painter(library)
    view = ArchitectureView(Kit(library, painter, settings.look, settings.venue))
    frame = LayerInput(size, scene, showcase.overlay("answer", 1.0), Camera(0.0), 1.0, 1.0, 1.0,
                       settings.look.history)  # fmt: skip
    try:
        Painter.text = recorded
        target.fbo.use()
        painter.next_frame()
        view.update(frame)
        view.draw(frame)
    finally:
        Painter.text = text
        view.release()
        painter.release()
        library.release()
        target.close()
    drawn = " ".join(" ".join(said).split())  # the wrapped lines, one after the other
    lines = up_close(showcase.architecture(), scene.anatomy.focus)
    notes = [" ".join(line.split()) for line, _ in lines]
    assert len(notes) == 5 and [note in drawn for note in notes] == [True] * 5, (notes, said)
