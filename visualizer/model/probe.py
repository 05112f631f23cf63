"""The probe pass `inspect` reads a model's facts from: one forward pass of a few tokens with
every module's first call recorded (what it read, what it wrote, in which order) and what each
attention call handed its attention function. Also where the transformer blocks are, and the
language model's own config."""

from dataclasses import dataclass, field

import torch
from torch import nn

from visualizer.errors import UserError
from visualizer.model.capture import ATTN_IMPLEMENTATION, AttentionInputs

PROBE_TOKENS = 6


@dataclass
class Call:
    """One module's first call in the probe pass: its inputs, its output, when it ran."""

    module: nn.Module
    args: tuple
    kwargs: dict
    out: object
    order: int

    @property
    def x(self) -> torch.Tensor | None:
        """The tensor it read (its first argument, or `hidden_states`)."""
        if self.args and torch.is_tensor(self.args[0]):
            return self.args[0]
        return self.kwargs.get("hidden_states")

    @property
    def y(self) -> torch.Tensor | None:
        """The tensor it wrote (the first of a tuple)."""
        out = self.out[0] if isinstance(self.out, tuple) else self.out
        return out if torch.is_tensor(out) else None


@dataclass
class Probe:
    """What the probe pass recorded."""

    calls: dict[nn.Module, Call] = field(default_factory=dict)  # each module's first call
    attention: dict[nn.Module, AttentionInputs] = field(default_factory=dict)
    logits: torch.Tensor | None = None


def same(a: torch.Tensor | None, b: torch.Tensor | None) -> bool:
    """The very values one module wrote and another read: how data flow is read."""
    return a is not None and b is not None and a.shape == b.shape and torch.equal(a, b)


def close(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Equal but for rounding (a sum, a rotation computed again)."""
    scale = float(b.abs().max()) + 1e-6
    return a.shape == b.shape and float((a.float() - b.float()).abs().max()) <= 1e-4 * scale


def text_config(model: nn.Module) -> object:
    """The language model's own config (a multimodal model nests it)."""
    return text_config_of(model.config)


def text_config_of(config: object) -> object:
    return config.get_text_config() if hasattr(config, "get_text_config") else config


def find_blocks(model: nn.Module) -> tuple[str, nn.ModuleList]:
    """The path and the list of the transformer blocks: the module list as long as the config
    says the model is deep."""
    n = getattr(text_config(model), "num_hidden_layers", None)
    for path, module in model.named_modules():
        if isinstance(module, nn.ModuleList) and len(module) == n:
            return path, module
    raise UserError(f"{type(model).__name__}: cannot find its {n} transformer blocks")


def run_probe(model: nn.Module) -> Probe:
    """One forward pass of a few tokens, every module's first call recorded."""
    probe = Probe()
    order = iter(range(1 << 30))

    def record(module, args, kwargs, out):
        if module not in probe.calls:
            probe.calls[module] = Call(module, args, kwargs, out, next(order))
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
