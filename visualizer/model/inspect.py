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
the modules the capture hooks.
"""

from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import nn

from visualizer.architecture import (
    CONFIG_ACTIVATIONS,
    Architecture,
    Block,
    Mlp,
    Step,
    _rope_theta,
    ranges,
)
from visualizer.errors import UserError
from visualizer.model.capture import ATTN_IMPLEMENTATION, AttentionInputs

PROBE_TOKENS = 6


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


@dataclass
class _Call:
    module: nn.Module
    args: tuple
    kwargs: dict
    out: object
    order: int

    @property
    def x(self) -> torch.Tensor | None:
        if self.args and torch.is_tensor(self.args[0]):
            return self.args[0]
        return self.kwargs.get("hidden_states")

    @property
    def y(self) -> torch.Tensor | None:
        out = self.out[0] if isinstance(self.out, tuple) else self.out
        return out if torch.is_tensor(out) else None


@dataclass
class _Probe:
    calls: dict[nn.Module, _Call] = field(default_factory=dict)  # each module's first call
    attention: dict[nn.Module, AttentionInputs] = field(default_factory=dict)
    logits: torch.Tensor | None = None


def _same(a: torch.Tensor | None, b: torch.Tensor | None) -> bool:
    return a is not None and b is not None and a.shape == b.shape and torch.equal(a, b)


def _close(a: torch.Tensor, b: torch.Tensor) -> bool:
    scale = float(b.abs().max()) + 1e-6
    return a.shape == b.shape and float((a.float() - b.float()).abs().max()) <= 1e-4 * scale


def _is_norm(module: nn.Module) -> bool:
    return isinstance(module, nn.LayerNorm | nn.RMSNorm) or "norm" in type(module).__name__.lower()


def _projection(module: nn.Module) -> bool:
    """A Linear, or GPT-2's Conv1D: a leaf with a 2-D weight."""
    weight = getattr(module, "weight", None)
    return isinstance(weight, torch.Tensor) and weight.ndim == 2 and not list(module.children())


def _text_config(model: nn.Module):
    """The language model's own config (a multimodal model nests it)."""
    return _text_config_of(model.config)


def _text_config_of(config):
    return config.get_text_config() if hasattr(config, "get_text_config") else config


def find_blocks(model: nn.Module) -> tuple[str, nn.ModuleList]:
    n = getattr(_text_config(model), "num_hidden_layers", None)
    for path, module in model.named_modules():
        if isinstance(module, nn.ModuleList) and len(module) == n:
            return path, module
    raise UserError(f"{type(model).__name__}: cannot find its {n} transformer blocks")


def _run_probe(model: nn.Module) -> _Probe:
    """One forward pass of a few tokens, every module's first call recorded."""
    probe = _Probe()
    order = iter(range(1 << 30))

    def record(module, args, kwargs, out):
        if module not in probe.calls:
            probe.calls[module] = _Call(module, args, kwargs, out, next(order))
        if isinstance(out, tuple) and len(out) > 1 and isinstance(out[1], AttentionInputs):
            probe.attention.setdefault(module, out[1])

    handles = [m.register_forward_hook(record, with_kwargs=True) for m in model.modules()]
    vocab = model.get_input_embeddings().weight.shape[0]
    ids = (torch.arange(PROBE_TOKENS) * 7 + 11) % vocab
    device = model.get_input_embeddings().weight.device
    previous = model.config._attn_implementation
    model.set_attn_implementation(ATTN_IMPLEMENTATION)
    try:
        with torch.no_grad():
            out = model(input_ids=ids[None].to(device), use_cache=False)
        probe.logits = out.logits
    finally:
        model.set_attn_implementation(previous)
        for h in handles:
            h.remove()
    return probe


# --- behaviour: what kind of norm, which activation -------------------------------------------


def _norm_kind(module: nn.Module, dim: int) -> str | None:
    """"LayerNorm" if a shift of the input changes nothing (it subtracts the mean), "RMSNorm" if
    only a scale changes nothing; None if it is neither."""
    param = next(module.parameters(), None)
    dtype = param.dtype if param is not None else torch.float32
    device = _device_of(module, param)
    x = torch.randn(1, 3, dim, generator=torch.Generator().manual_seed(0)).to(device, dtype)
    with torch.no_grad():
        y, shifted, scaled = module(x), module(x + 3.0), module(2.0 * x)
    tolerance = 1e-2 if dtype != torch.float32 else 1e-4
    if _near(shifted, y, tolerance):
        return "LayerNorm"
    if _near(scaled, y, tolerance):
        return "RMSNorm"
    return None


def _device_of(module: nn.Module, param: torch.Tensor | None) -> torch.device | str:
    """Where the module computes: accelerate's execution device for a dispatched model (its
    weights may sit on another device, or on disk), else its weights' device."""
    hook = getattr(module, "_hf_hook", None)
    device = getattr(hook, "execution_device", None)
    if device is not None:
        return device
    return param.device if param is not None and param.device.type != "meta" else "cpu"


def _near(a: torch.Tensor, b: torch.Tensor, tolerance: float) -> bool:
    scale = float(b.float().abs().max()) + 1e-6
    return float((a.float() - b.float()).abs().max()) <= tolerance * scale


_ACTIVATIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "SiLU": nn.functional.silu,
    "GELU": nn.functional.gelu,
    "GELU (tanh)": lambda x: nn.functional.gelu(x, approximate="tanh"),
    "GELU (quick)": lambda x: x * torch.sigmoid(1.702 * x),
    "ReLU": torch.relu,
    "ReLU²": lambda x: torch.relu(x) ** 2,
    "tanh": torch.tanh,
    "sigmoid": torch.sigmoid,
}


def _activation_of(module: nn.Module) -> str | None:
    """The activation a parameterless module computes, told by its values on -6..6."""
    x = torch.linspace(-6, 6, 481)
    try:
        with torch.no_grad():
            y = module(x).float()
    except (RuntimeError, TypeError):
        return None
    for name, reference in _ACTIVATIONS.items():
        if y.shape == x.shape and float((y - reference(x)).abs().max()) < 5e-5:
            return name
    return None


def _per_head(y: torch.Tensor | None, heads: int, tokens: int, size: int) -> list[torch.Tensor]:
    """A module's output read as per-head queries [H, S, hd], in each layout attention code
    uses: [S, H·hd] (of a fused q, k, v projection its first H·hd columns), GPT-NeoX's
    [S, H, 3·hd] (each head's q, k, v), [S, H, hd] (a per-head q_norm), [H, S, hd]."""
    if y is None:
        return []
    y = y.detach().float()
    if y.ndim in (3, 4) and y.shape[0] == 1:  # a batch of one
        y = y[0]
    width = heads * size
    found = []
    if y.shape == (tokens, heads, size):
        found.append(y.transpose(0, 1))
    if y.shape == (heads, tokens, size):
        found.append(y)
    if y.ndim == 2 and y.shape[0] == tokens and y.shape[1] >= width:
        found.append(y[:, :width].reshape(tokens, heads, size).transpose(0, 1))
        if y.shape[1] == 3 * width:
            found.append(y.reshape(tokens, heads, 3 * size)[..., :size].transpose(0, 1))
    return found


# --- one block ---------------------------------------------------------------------------------


def _child_of(block: nn.Module, target: nn.Module) -> tuple[str, nn.Module] | None:
    """The direct child of `block` that is or contains `target`."""
    for name, child in block.named_children():
        if child is target or any(m is target for m in child.modules()):
            return name, child
    return None


class _BlockReader:
    """Reads one block's facts from its modules and the probe's record of their calls."""

    def __init__(self, index: int, path: str, block: nn.Module, probe: _Probe, config) -> None:
        self.i, self.path, self.block, self.probe, self.config = index, path, block, probe, config
        self.notes: list[str] = []
        inside = [m for m in block.modules() if m in probe.attention]
        if not inside:
            raise UserError(f"block {index} ({path}): no attention call was seen in it")
        self.attn_module = inside[0]
        self.attn_inputs = probe.attention[self.attn_module]
        attn_child = _child_of(block, self.attn_module)
        self.attn_name, self.attn = attn_child
        called = [(n, c) for n, c in block.named_children() if c in probe.calls]
        self.norms = [(n, c) for n, c in called if _is_norm(c)]
        rest = [(n, c) for n, c in called if c is not self.attn and not _is_norm(c)
                and any(True for _ in c.parameters())]  # fmt: skip
        if len(rest) != 1:
            found = ", ".join(n for n, _ in rest) or "nothing"
            raise UserError(f"block {index} ({path}): cannot tell its MLP apart ({found})")
        self.mlp_name, self.mlp = rest[0]

    def call(self, module: nn.Module) -> _Call:
        return self.probe.calls[module]

    def read(self) -> tuple[Block, dict]:
        """The block's facts, and its hook points for the capture."""
        a, m = self.call(self.attn), self.call(self.mlp)
        x_in, x_out = self.call(self.block).x, self.call(self.block).y
        placed = {"pre_attn": [], "post_attn": [], "pre_mlp": [], "post_mlp": []}
        for name, norm in self.norms:
            c = self.call(norm)
            where = ("pre_attn" if _same(c.y, a.x) else "post_attn" if _same(c.x, a.y)
                     else "pre_mlp" if _same(c.y, m.x) else "post_mlp" if _same(c.x, m.y)
                     else None)  # fmt: skip
            if where is None:
                self.notes.append(f"block {self.i}: where {name} runs could not be read")
            else:
                placed[where].append((name, norm))
        mlp_in = self.call(placed["pre_mlp"][0][1]).x if placed["pre_mlp"] else m.x
        parallel = _same(m.x, a.x) or _same(mlp_in, x_in)
        mlp_last = placed["post_mlp"][-1][1] if placed["post_mlp"] else self.mlp
        if not parallel:
            attn_last = placed["post_attn"][-1][1] if placed["post_attn"] else self.attn
            plain = (_close(mlp_in, x_in + self.call(attn_last).y)
                     and _close(x_out, mlp_in + self.call(mlp_last).y))  # fmt: skip
            if not plain:
                self.notes.append(f"block {self.i}: its residual ⊕ is not a plain sum; the MLP's "
                                  "write is shown as its branch's output")  # fmt: skip
        mlp, down, experts = self._mlp(m)
        steps = self._steps(placed, parallel, mlp.name)
        inputs = self.attn_inputs
        heads, head_dim = inputs.query.shape[0], inputs.query.shape[-1]
        kv_heads = inputs.key.shape[0]
        window = inputs.sliding_window
        attn_path = f"{self.path}.{self.attn_name}"
        call = f"the attention call of {attn_path}"
        keys = [f"config.{k}" for k in ("sliding_window", "use_sliding_window")
                if getattr(self.config, k, None) is not None]  # fmt: skip
        if getattr(self.config, "layer_types", None):
            keys.append(f"config.layer_types[{self.i}]")
        window_keys = ", ".join(keys) or "no sliding window in the config"
        projections = [(n, p) for n, p in self.attn.named_modules() if _projection(p)]
        sources = {
            "attention": f"{call} ({window_keys})", "window": f"{call} ({window_keys})",
            "heads": f"{call}: query heads", "kv_heads": f"{call}: key/value heads",
            "head_dim": f"{call}: query size per head", "scale": f"{call}: scaling",
            "softcap": f"{call}: softcap" + (" (config.attn_logit_softcapping)" if getattr(
                self.config, "attn_logit_softcapping", None) is not None else ""),
            "attn_bias": f"{attn_path}: its projections ({', '.join(n for n, _ in projections)})",
            "moe": f"{self.path}.{self.mlp_name}: no expert parameters",
            "steps": f"{self.path}: the order its modules ran in, and what each one read",
            "parallel": f"{self.path}: what its MLP read",
            "qk_norm": attn_path,
        }  # fmt: skip
        qk = [(n, c) for n, c in self.attn.named_modules() if c in self.probe.calls and _is_norm(c)]
        qk_norm = None
        if qk:
            dim = self.call(qk[0][1]).x.shape[-1]
            kind = _norm_kind(qk[0][1], dim) or "norm (unknown kind)"
            over = f"each head ({dim})" if dim == head_dim else f"all heads together ({dim})"
            qk_norm = f"{kind} over {over}"
            sources["qk_norm"] = ", ".join(f"{attn_path}.{n}" for n, _ in qk)
        rope, sources["rope"] = self._rope(attn_path)
        block = Block(
            attention="sliding" if window else "global", window=int(window) if window else None,
            heads=heads, kv_heads=kv_heads, head_dim=head_dim, scale=float(inputs.scale),
            softcap=float(inputs.softcap) if inputs.softcap else None, qk_norm=qk_norm,
            attn_bias=tuple(n for n, p in projections if getattr(p, "bias", None) is not None),
            steps=steps, parallel=parallel, mlp=mlp, rope=rope, sources=sources,
        )  # fmt: skip
        if mlp_last is self.mlp and down is not None and _same(self.call(down).y, m.y):
            mlp_last = down  # the same tensor, from a module the capture hooks anyway
        called = sorted((p for _, p in projections if p in self.probe.calls),
                        key=lambda p: self.call(p).order)  # fmt: skip
        hooks = {"attention": self.attn_module, "down": down, "write": mlp_last,
                 "experts": experts, "attn_out": called[-1] if called else None}  # fmt: skip
        return block, hooks

    def _rope(self, attn_path: str) -> tuple[bool | None, str]:
        """Whether this block's attention rotates q and k (RoPE), and what says so. Measured
        first: the query it handed its attention function is matched, at position 0 (which RoPE
        leaves as it is), with the output of one of its own modules (q_proj, a fused qkv
        projection, q_norm); RoPE then shows as a change at the later positions that keeps each
        head's length, and no RoPE as no change from a projection's output (a norm's output may
        be the query after the rotation, as Llama 4's L2 norm is). Where no output tells, its
        module's own `use_rope`, else config.no_rope_layers; else unknown. Never from the
        family: Cohere 2's global blocks skip RoPE with no flag to say so."""
        query = self.attn_inputs.query.float()  # [H, S, hd], as attention read it
        heads, tokens, size = query.shape
        for name, module in self.attn.named_modules():
            call = self.probe.calls.get(module)
            if not name or call is None or tokens < 2:
                continue
            for before in _per_head(call.y, heads, tokens, size):  # [H, S, hd]
                if not _close(before[:, 0], query[:, 0]):
                    continue
                where = f"the attention call of {attn_path}: its query against {name}'s output"
                if _close(before, query):
                    if _projection(module):  # a norm's output may be the query after RoPE
                        return False, f"{where} (the same at every position: not rotated)"
                    continue
                if _close(before.norm(dim=-1), query.norm(dim=-1)):
                    return True, f"{where} (turned at positions 1–{tokens - 1}, lengths kept)"
        flag = getattr(self.attn_module, "use_rope", getattr(self.attn, "use_rope", None))
        if isinstance(flag, bool | int):
            return bool(flag), f"{attn_path}.use_rope"
        listed = getattr(_text_config_of(self.config), "no_rope_layers", None)
        if isinstance(listed, list | tuple) and self.i < len(listed):
            return bool(listed[self.i]), f"config.no_rope_layers[{self.i}] (1: RoPE)"
        return None, f"{attn_path}: whether it rotates q and k could not be read"

    def _steps(self, placed: dict, parallel: bool, mlp_label: str) -> tuple[Step, ...]:
        def norms(key: str, where: str) -> list[Step]:
            out = []
            for name, norm in placed[key]:
                dim = self.call(norm).x.shape[-1]
                kind = _norm_kind(norm, dim) or "norm (unknown kind)"
                out.append(Step("norm", kind, f"{self.path}.{name}", where))
            return out

        attention = Step("attention", "attention", f"{self.path}.{self.attn_name}")
        mlp = Step("mlp", mlp_label, f"{self.path}.{self.mlp_name}")
        add = Step("add", "⊕", f"{self.path} (its forward adds the branch to the stream)")
        if parallel:
            return (*norms("pre_attn", "before attention and the MLP"), attention,
                    *norms("pre_mlp", "before the MLP"), mlp, add)  # fmt: skip
        return (*norms("pre_attn", "before attention"), attention,
                *norms("post_attn", "after attention, before ⊕"), add,
                *norms("pre_mlp", "before the MLP"), mlp,
                *norms("post_mlp", "after the MLP, before ⊕"), add)  # fmt: skip

    def _mlp(self, m: _Call) -> tuple[Mlp, nn.Module | None, nn.Module | None]:
        path = f"{self.path}.{self.mlp_name}"
        experts = next((c for c in self.mlp.modules()
                        if any(p.ndim == 3 for p in c.parameters(recurse=False))),
                       None)  # fmt: skip
        if experts is not None:
            return self._moe(path, experts), None, experts
        projections = [(n, p) for n, p in self.mlp.named_modules()
                       if _projection(p) and p in self.probe.calls]  # fmt: skip
        projections.sort(key=lambda item: self.call(item[1]).order)
        if not projections:
            raise UserError(f"block {self.i}: its MLP ({path}) has no projections")
        down_name, down = projections[-1]
        width = self.call(down).x.shape[-1]
        reading = [p for _, p in projections if _same(self.call(p).x, m.x)]
        widths = sum(self.call(p).y.shape[-1] for p in reading)
        gated = True if widths == 2 * width else False if widths == width else None
        activation, act_source = self._activation(self.mlp, path)
        sources = {
            "gated": f"{path}: its projections ({', '.join(n for n, _ in projections)}) by what "
                     "each reads and writes",
            "width": f"{path}.{down_name}: input size", "activation": act_source,
            "projections": path, "bias": path, "experts": f"{path}: no expert parameters",
            "active": f"{path}: no expert parameters", "shared": f"{path}: no expert parameters",
        }  # fmt: skip
        mlp = Mlp(gated=gated, activation=activation, width=width,
                  projections=tuple(f"{path}.{n}" for n, _ in projections),
                  bias=any(getattr(p, "bias", None) is not None for _, p in projections),
                  sources=sources)  # fmt: skip
        return mlp, down, None

    def _activation(self, parent: nn.Module, path: str) -> tuple[str | None, str]:
        for name, c in parent.named_modules():
            if c in self.probe.calls and not any(True for _ in c.parameters()) and name:
                found = _activation_of(c)
                if found:
                    return found, f"{path}.{name}: its values on -6..6"
        for key in ("hidden_activation", "hidden_act", "activation_function"):
            value = getattr(self.config, key, None)
            if value:
                return CONFIG_ACTIVATIONS.get(value, value), f"config.{key}"
        return None, ""

    def _moe(self, path: str, experts: nn.Module) -> Mlp:
        rel = next(n for n, c in self.mlp.named_modules() if c is experts)
        params = dict(experts.named_parameters(recurse=False))
        count = next(p.shape[0] for p in params.values() if p.ndim == 3)
        down = next((p for n, p in params.items() if "down" in n and p.ndim == 3), None)
        width = int(down.shape[-1]) if down is not None else None
        fused = next((p for n, p in params.items() if "gate_up" in n and p.ndim == 3), None)
        gated = True if fused is not None and width and fused.shape[1] == 2 * width else None
        call = self.probe.calls.get(experts)
        routed = call.args[1] if call and len(call.args) > 1 else None
        active = int(routed.shape[-1]) if torch.is_tensor(routed) else 0
        shared = tuple(f"{path}.{n}" for n, c in self.mlp.named_children()
                       if c is not experts
                       and sum(_projection(p) for p in c.modules()) >= 2)  # fmt: skip
        activation, act_source = self._activation(experts, f"{path}.{rel}")
        sources = {
            "experts": f"{path}.{rel}: its parameters ({', '.join(params)}), first dimension",
            "active": f"{path}.{rel}: the top-k expert ids it was handed",
            "width": f"{path}.{rel}.down_proj: last dimension" if down is not None else "",
            "gated": f"{path}.{rel}.gate_up_proj: twice the expert width" if gated else "",
            "activation": act_source, "shared": path, "projections": path,
        }  # fmt: skip
        return Mlp(gated=gated, activation=activation, width=width, projections=(f"{path}.{rel}",),
                   bias=None, experts=count, active=active, shared=shared, sources=sources)


# --- the whole model ---------------------------------------------------------------------------


def inspect_model(
    model: nn.Module, tokenizer=None, name: str = "", name_source: str = ""
) -> tuple[Architecture, Parts]:
    """The description of `model` and the modules the capture hooks. Raises UserError for a
    model whose blocks, attention or MLP cannot be found."""
    blocks_path, blocks = find_blocks(model)
    probe = _run_probe(model)
    config = model.config
    notes: list[str] = []
    described, hooks = [], []
    for i, block in enumerate(blocks):
        reader = _BlockReader(i, f"{blocks_path}.{i}", block, probe, config)
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
    text_config = _text_config(model)
    context, key = _config_value(text_config, "max_position_embeddings", "n_positions", "n_ctx")
    if key:
        sources["context"] = f"config.{key}"
    softcap = getattr(text_config, "final_logit_softcapping", None)
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


def _positions(model, probe: _Probe, blocks, embedding, sources: dict) -> tuple[str | None, dict]:
    """RoPE (a called module holding inverse frequencies; θ from config.rope_parameters),
    learned (another embedding table the model called), or unknown."""
    in_blocks = {m for b in blocks for m in b.modules()}
    for path, module in model.named_modules():
        if module in in_blocks or module not in probe.calls:
            continue
        if any(n.endswith("inv_freq") for n, _ in module.named_buffers(recurse=False)):
            theta = _rope_theta(getattr(_text_config(model), "rope_parameters", None) or {})
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


def _final_norm(model, probe: _Probe, blocks) -> tuple[str, str | None, nn.Module] | None:
    last = probe.calls[blocks[-1]].order
    in_blocks = {m for b in blocks for m in b.modules()}
    after = [(p, m) for p, m in model.named_modules() if m in probe.calls and m not in in_blocks
             and _is_norm(m) and probe.calls[m].order > last]  # fmt: skip
    if not after:
        return None
    path, norm = min(after, key=lambda item: probe.calls[item[1]].order)
    return path, _norm_kind(norm, probe.calls[norm].x.shape[-1]), norm
