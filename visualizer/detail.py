"""How much of each frame crosses from the model to whoever draws or keeps it: chosen by the
consumer, applied by the producer (the model process or the server) on the model's own device,
before the frame leaves it.

- `full`: every number as captured (float32; attention over every position in view; the MLP
  activation over all of d_ff). The local window's default.
- `reduced`: float16 (an array with a value beyond float16's range stays float32: a value
  never becomes inf on the way); attention over the newest 64 positions and the first in view
  (the sink), which is all the scenes draw; the MLP activation as 48 node summaries (the RMS of each
  contiguous group of d_ff). A remote window's default.
- `compact`: `reduced`, with attention over the newest 24 positions, and the residual stream
  and the MLP's write sent as int8 with a float32 scale per row (wire/frames.py) for thin links:
  a Llama-3-70B frame in under 2 MB.
A trace keeps float16 and its attention window, and all of d_ff.
"""

from typing import Annotated, Literal

import msgspec


class Detail(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Decoded from the wire with these bounds (a client asks for its own)."""

    dtype: Literal["float32", "float16"] = "float32"  # of every array of numbers (float16
    #                                                   only where the values fit it)
    attention: Annotated[int, msgspec.Meta(ge=0, le=1 << 20)] = 0  # positions of attention
    #                                         kept per token, the newest; 0: all in view
    nodes: Annotated[int, msgspec.Meta(ge=0, le=4096)] = 0  # the MLP activation as this many
    #                                         group RMS summaries; 0: all of d_ff
    quantize: bool = False  # residual and MLP write as int8 + a scale per row on the wire


LEVELS = {
    "full": Detail(),
    "reduced": Detail("float16", 64, 48),
    "compact": Detail("float16", 24, 48, quantize=True),
}


def detail_named(name: str) -> Detail:
    if name not in LEVELS:
        raise ValueError(f"detail {name!r}: expected one of {', '.join(LEVELS)}")
    return LEVELS[name]
