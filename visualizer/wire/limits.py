"""How big anything on the wire may be: the fixed ceilings of what one message holds, and the
limits a model's architecture sets. Network input is hostile: a size is checked against these
before anything is allocated for it."""

from typing import Annotated

import msgspec
from msgspec import Meta

from visualizer.architecture import Architecture
from visualizer.detail import Detail

MAX_CLIENT_MESSAGE = 256 * 1024  # bytes: a prompt, sampling settings, a token
MAX_HEADER = 1 << 20  # bytes of a frame's or status's header (texts; an architecture)
MAX_STATUS = 8 << 20  # a status with the architecture and config of a 4096-block model
MAX_DIMS, MAX_DIM = 4, 1 << 24
MAX_BLOCKS = 4096
MAX_TEXT = 4096  # characters of one token's text, a message, a model's name
MAX_PROMPT = 64 * 1024  # characters
MAX_CANDIDATES = 1000  # next-token candidates per frame (capture.candidates' bound)


class _Count(msgspec.Struct, frozen=True):
    value: Annotated[int, Meta(ge=0, le=1 << 26)] | None = None


class _BlockSize(msgspec.Struct, frozen=True):
    heads: _Count = _Count()
    kv_heads: _Count = _Count()
    head_dim: _Count = _Count()
    window: _Count = _Count()


class ArchitectureSize(msgspec.Struct, frozen=True):
    """The facts of an architecture that size what a client allocates, with their ranges; the
    rest is read by Architecture.from_json."""

    blocks: _Count = _Count()
    width: _Count = _Count()
    vocab: _Count = _Count()
    context: _Count = _Count()
    block: Annotated[tuple[_BlockSize, ...], Meta(max_length=MAX_BLOCKS)] = ()


def frame_limit(arch: Architecture | None, detail: Detail, context: int) -> int:
    """The most bytes one frame of `arch` at `detail` can take on the wire (a client's receive
    limit): every array at its widest element, and the header's own ceiling."""
    if arch is None or arch.width is None:
        return MAX_STATUS
    blocks, width = arch.blocks, arch.width
    heads = max((b.heads or 0 for b in arch.block), default=0) or width
    mlp = detail.nodes or max((b.mlp.width or 0 for b in arch.block), default=0) or 8 * width
    experts = max((b.mlp.experts for b in arch.block), default=0)
    span = detail.attention + 1 if detail.attention else context
    elements = (
        (blocks + 1) * width
        + blocks * (mlp + width + experts + heads * (span + 1))
        + 2 * (blocks + 1) * 20
        + 3 * MAX_CANDIDATES
    )  # lens rows of ≤ 20, top-k
    return 2 * 8 * elements + MAX_HEADER  # × 2: a ghost's arrays; 8: the widest element
