"""The dither of the passes that write a smooth field into 8 bits (shaders/lib/dither.glsl):
the finish of the web's light and its backdrop. Without it a dark gradient (the backdrop's
vignette: about ten levels of blue across half the frame) is drawn as flat bands a hundred
pixels wide, and H.264 keeps the bands.

The noise is blue (void-and-cluster, Ulichney 1993): no low frequencies, so at ±0.5 of a level
it reads as the gradient, not as grain. `blue_noise` makes it with a fixed seed (0.2 s); what
the renderer loads is its 8-bit levels as made once, shaders/lib/blue_noise.pgm (a test makes
it again and compares), so no process pays for it at start-up. It is held still on the screen:
the same frame is the same bytes (renders are compared frame by frame), and a pattern that does
not move costs H.264 nothing after the first frame.
"""

from functools import cache
from pathlib import Path

import moderngl
import numpy as np

from visualizer.gl.shaders import SHADER_DIR

SIZE = 64  # the tile's side: the pattern repeats every 64 pixels
UNIT = 7  # the texture unit it stays bound to; the passes use units 0-2
TILE = SHADER_DIR / "lib" / "blue_noise.pgm"  # levels(blue_noise()), a binary PGM
HEADER = f"P5\n{SIZE} {SIZE}\n255\n".encode()  # the PGM's, as write_tile writes it


@cache
def blue_noise(size: int = SIZE, sigma: float = 1.5, seed: int = 34) -> np.ndarray:
    """A [size, size] float32 tile, tileable, holding each of (rank + 0.5) / size² once: a
    threshold per pixel, ordered so that every level's pixels are spread evenly (the energy of
    a Gaussian of `sigma` pixels, on the torus, kept flat)."""
    n = size * size
    d = np.minimum(np.arange(size), size - np.arange(size))
    kernel = np.exp(-(d[:, None] ** 2 + d[None, :] ** 2) / (2 * sigma**2))
    tiled = np.tile(kernel, (2, 2))  # a view of it shifted to pixel p: tiled[size - p ...]

    def spread(energy: np.ndarray, p: int, sign: float) -> None:
        y, x = divmod(p, size)
        energy += sign * tiled[size - y:2 * size - y, size - x:2 * size - x]  # fmt: skip

    rng = np.random.default_rng(seed)
    first = n // 10  # the initial pattern: a tenth of the pixels at random, then relaxed
    mask = np.zeros(n, bool)
    mask[rng.choice(n, first, replace=False)] = True
    energy = np.zeros((size, size))
    for p in np.flatnonzero(mask):
        spread(energy, p, 1.0)
    flat = energy.reshape(-1)  # [n], a view
    while True:  # the tightest cluster moved to the largest void, until it is the same pixel
        cluster = np.where(mask, flat, -np.inf).argmax()
        mask[cluster] = False
        spread(energy, cluster, -1.0)
        void = np.where(mask, np.inf, flat).argmin()
        mask[void] = True
        spread(energy, void, 1.0)
        if void == cluster:
            break
    rank = np.empty(n, np.int64)
    ones, below = mask.copy(), energy.copy()
    low = below.reshape(-1)
    for r in range(first - 1, -1, -1):  # the pattern's own pixels, tightest cluster last
        cluster = np.where(ones, low, -np.inf).argmax()
        ones[cluster] = False
        spread(below, cluster, -1.0)
        rank[cluster] = r
    for r in range(first, n):  # the rest, each into the largest void (past half, the void of
        void = np.where(mask, np.inf, flat).argmin()  # ones is the zeros' tightest cluster)
        mask[void] = True
        spread(energy, void, 1.0)
        rank[void] = r
    return ((rank + 0.5) / n).astype(np.float32).reshape(size, size)


def levels(tile: np.ndarray) -> np.ndarray:
    """The tile in 8 bits: 256 levels of 16 pixels each (the shader centres them)."""
    return np.floor(tile * 256).astype(np.uint8)


def write_tile(path: Path = TILE) -> None:
    """Make the tile and write its levels as a binary PGM (`python -m visualizer.gl.dither`)."""
    path.write_bytes(HEADER + levels(blue_noise()).tobytes())


def read_tile(path: Path = TILE) -> np.ndarray:
    """The [SIZE, SIZE] uint8 levels written by write_tile."""
    data = path.read_bytes()
    if not data.startswith(HEADER) or len(data) != len(HEADER) + SIZE * SIZE:
        raise ValueError(f"{path}: not the {SIZE}x{SIZE} 8-bit PGM that write_tile makes")
    return np.frombuffer(data, np.uint8, offset=len(HEADER)).reshape(SIZE, SIZE)


def dither_texture(ctx: moderngl.Context) -> moderngl.Texture:
    """The tile's levels as a one-byte texture, read with texelFetch (no filtering): a byte a
    read is cheaper than a float on a CPU renderer."""
    texture = ctx.texture((SIZE, SIZE), 1, read_tile().tobytes())
    texture.filter = (moderngl.NEAREST, moderngl.NEAREST)
    return texture


if __name__ == "__main__":
    write_tile()
