"""What a module is, told from its type and, where a name would mislead, from its values: a
norm and which kind (LayerNorm or RMSNorm), a projection, an activation, and the per-head layouts
a query can come out of a module in."""

from collections.abc import Callable

import torch
from torch import nn


def is_norm(module: nn.Module) -> bool:
    return isinstance(module, nn.LayerNorm | nn.RMSNorm) or "norm" in type(module).__name__.lower()


def is_projection(module: nn.Module) -> bool:
    """A Linear, or GPT-2's Conv1D: a leaf with a 2-D weight."""
    weight = getattr(module, "weight", None)
    return isinstance(weight, torch.Tensor) and weight.ndim == 2 and not list(module.children())


def norm_kind(module: nn.Module, dim: int) -> str | None:
    """Its kind: "LayerNorm" if a shift of the input changes nothing (it subtracts the mean),
    "RMSNorm" if only a scale changes nothing; None if it is neither."""
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


def activation_of(module: nn.Module) -> str | None:
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


def per_head(y: torch.Tensor | None, heads: int, tokens: int, size: int) -> list[torch.Tensor]:
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
