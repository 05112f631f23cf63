"""One transformer block's facts, read from its modules and the probe's record of their calls:
where each norm sits, whether attention and the MLP run in parallel, the attention (heads, head
size, scale, softcap, sliding window, RoPE, q/k norms), the MLP or its experts; and the modules
the capture hooks in it."""

import torch
from torch import nn

from visualizer.architecture import CONFIG_ACTIVATIONS, Block, Mlp, Step
from visualizer.errors import UserError
from visualizer.model.kinds import activation_of, is_norm, is_projection, norm_kind, per_head
from visualizer.model.probe import Call, Probe, close, same, text_config_of


def _child_of(block: nn.Module, target: nn.Module) -> tuple[str, nn.Module] | None:
    """The direct child of `block` that is or contains `target`."""
    for name, child in block.named_children():
        if child is target or any(m is target for m in child.modules()):
            return name, child
    return None


class BlockReader:
    """Reads one block's facts from its modules and the probe's record of their calls."""

    def __init__(self, index: int, path: str, block: nn.Module, probe: Probe, config) -> None:
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
        self.norms = [(n, c) for n, c in called if is_norm(c)]
        rest = [(n, c) for n, c in called if c is not self.attn and not is_norm(c)
                and any(True for _ in c.parameters())]  # fmt: skip
        if len(rest) != 1:
            found = ", ".join(n for n, _ in rest) or "nothing"
            raise UserError(f"block {index} ({path}): cannot tell its MLP apart ({found})")
        self.mlp_name, self.mlp = rest[0]

    def call(self, module: nn.Module) -> Call:
        return self.probe.calls[module]

    def read(self) -> tuple[Block, dict]:
        """The block's facts, and its hook points for the capture."""
        a, m = self.call(self.attn), self.call(self.mlp)
        x_in, x_out = self.call(self.block).x, self.call(self.block).y
        placed = {"pre_attn": [], "post_attn": [], "pre_mlp": [], "post_mlp": []}
        for name, norm in self.norms:
            c = self.call(norm)
            where = ("pre_attn" if same(c.y, a.x) else "post_attn" if same(c.x, a.y)
                     else "pre_mlp" if same(c.y, m.x) else "post_mlp" if same(c.x, m.y)
                     else None)  # fmt: skip
            if where is None:
                self.notes.append(f"block {self.i}: where {name} runs could not be read")
            else:
                placed[where].append((name, norm))
        mlp_in = self.call(placed["pre_mlp"][0][1]).x if placed["pre_mlp"] else m.x
        parallel = same(m.x, a.x) or same(mlp_in, x_in)
        mlp_last = placed["post_mlp"][-1][1] if placed["post_mlp"] else self.mlp
        if not parallel:
            attn_last = placed["post_attn"][-1][1] if placed["post_attn"] else self.attn
            plain = (close(mlp_in, x_in + self.call(attn_last).y)
                     and close(x_out, mlp_in + self.call(mlp_last).y))  # fmt: skip
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
        projections = [(n, p) for n, p in self.attn.named_modules() if is_projection(p)]
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
        qk = [(n, c) for n, c in self.attn.named_modules() if c in self.probe.calls and is_norm(c)]
        qk_norm = None
        if qk:
            dim = self.call(qk[0][1]).x.shape[-1]
            kind = norm_kind(qk[0][1], dim) or "norm (unknown kind)"
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
        if mlp_last is self.mlp and down is not None and same(self.call(down).y, m.y):
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
            for before in per_head(call.y, heads, tokens, size):  # [H, S, hd]
                if not close(before[:, 0], query[:, 0]):
                    continue
                where = f"the attention call of {attn_path}: its query against {name}'s output"
                if close(before, query):
                    if is_projection(module):  # a norm's output may be the query after RoPE
                        return False, f"{where} (the same at every position: not rotated)"
                    continue
                if close(before.norm(dim=-1), query.norm(dim=-1)):
                    return True, f"{where} (turned at positions 1–{tokens - 1}, lengths kept)"
        flag = getattr(self.attn_module, "use_rope", getattr(self.attn, "use_rope", None))
        if isinstance(flag, bool | int):
            return bool(flag), f"{attn_path}.use_rope"
        listed = getattr(text_config_of(self.config), "no_rope_layers", None)
        if isinstance(listed, list | tuple) and self.i < len(listed):
            return bool(listed[self.i]), f"config.no_rope_layers[{self.i}] (1: RoPE)"
        return None, f"{attn_path}: whether it rotates q and k could not be read"

    def _steps(self, placed: dict, parallel: bool, mlp_label: str) -> tuple[Step, ...]:
        def norms(key: str, where: str) -> list[Step]:
            out = []
            for name, norm in placed[key]:
                dim = self.call(norm).x.shape[-1]
                kind = norm_kind(norm, dim) or "norm (unknown kind)"
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

    def _mlp(self, m: Call) -> tuple[Mlp, nn.Module | None, nn.Module | None]:
        path = f"{self.path}.{self.mlp_name}"
        experts = next((c for c in self.mlp.modules()
                        if any(p.ndim == 3 for p in c.parameters(recurse=False))),
                       None)  # fmt: skip
        if experts is not None:
            return self._moe(path, experts), None, experts
        projections = [(n, p) for n, p in self.mlp.named_modules()
                       if is_projection(p) and p in self.probe.calls]  # fmt: skip
        projections.sort(key=lambda item: self.call(item[1]).order)
        if not projections:
            raise UserError(f"block {self.i}: its MLP ({path}) has no projections")
        down_name, down = projections[-1]
        width = self.call(down).x.shape[-1]
        reading = [p for _, p in projections if same(self.call(p).x, m.x)]
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
                found = activation_of(c)
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
                       and sum(is_projection(p) for p in c.modules()) >= 2)  # fmt: skip
        activation, act_source = self._activation(experts, f"{path}.{rel}")
        sources = {
            "experts": f"{path}.{rel}: its parameters ({', '.join(params)}), first dimension",
            "active": f"{path}.{rel}: the top-k expert ids it was handed",
            "width": f"{path}.{rel}.down_proj: last dimension" if down is not None else "",
            "gated": f"{path}.{rel}.gate_up_proj: twice the expert width" if gated else "",
            "activation": act_source, "shared": path, "projections": path,
        }  # fmt: skip
        return Mlp(gated=gated, activation=activation, width=width, projections=(f"{path}.{rel}",),
                   bias=None, experts=count, active=active, shared=shared,
                   sources=sources)  # fmt: skip
