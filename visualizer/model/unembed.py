"""The unembedding as one product per forward pass: the model's own positions and the logit
lens's rows together, run by the capture's hooks on the model's own `nn.Linear`.

Why: on a CPU, torch multiplies a float32 vocabulary matrix by one row at a fraction of the
machine's speed (SmolLM2's 49152 × 576: 10-11 ms, a seventh of a token), and by nine rows
slower still (22 ms). oneDNN's product on a copy of the weights packed for it (the kernel torch's
own compiler uses on CPUs) does the model's row and eight lensed rows in about 5 ms, in float32:
the same logits within summation order (5e-6 of SmolLM2's), so the lens is exact and costs less
than the model's own row did. Elsewhere (a GPU, another dtype, no oneDNN) the rows go through
the layer's own F.linear, still as one product."""

import weakref
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

PACK_LIMIT = 1 << 30  # bytes: a larger unembedding is not copied; it runs as F.linear
PACKED_FOR = 64  # rows oneDNN lays the copy out for (a prompt chunk); a decode step's 9 run as fast
PROBE_ROWS = 4  # rows checked against F.linear before a packed copy is trusted
Product = Callable[[torch.Tensor], torch.Tensor]  # rows [N, d] → logits [N, V]
_products: "weakref.WeakKeyDictionary[nn.Module, Product]" = weakref.WeakKeyDictionary()


def foldable(unembed: nn.Module) -> bool:
    """Whether the hooks may run this unembedding themselves: a plain nn.Linear (not a
    quantized or otherwise wrapped one), with its weights on a device (not offloaded)."""
    return type(unembed) is nn.Linear and unembed.weight.device.type != "meta"


def product(unembed: nn.Linear) -> Product:
    """The unembedding's product, made once per layer: oneDNN on a packed float32 copy on a
    CPU (checked against F.linear on a probe first), else the layer's own F.linear."""
    if unembed not in _products:
        weight = unembed.weight.detach()
        bias = None if unembed.bias is None else unembed.bias.detach()
        own: Product = lambda rows: F.linear(rows, weight, bias)  # noqa: E731
        _products[unembed] = _packed(weight, bias, own) or own
    return _products[unembed]


def _packed(weight: torch.Tensor, bias: torch.Tensor | None, own: Product) -> Product | None:
    if (weight.device.type != "cpu" or weight.dtype != torch.float32
            or weight.numel() * weight.element_size() > PACK_LIMIT
            or not torch.backends.mkldnn.is_available()):  # fmt: skip
        return None
    try:
        packed = torch.ops.mkldnn._reorder_linear_weight(weight, PACKED_FOR)

        def run(rows: torch.Tensor) -> torch.Tensor:
            return torch.ops.mkldnn._linear_pointwise(rows, packed, bias, "none", [], "")

        probe = torch.randn(PROBE_ROWS, weight.shape[1])
        expected = own(probe)
        agrees = torch.allclose(run(probe), expected, rtol=1e-4, atol=1e-4 * expected.abs().max())
    except (RuntimeError, AttributeError):  # a torch built without these kernels
        return None
    return run if agrees else None
