"""`neuroweb bench`'s own pieces that need no minutes of measuring: the wire sizes it reports
are those of real frames, and grow with what each detail level carries."""

from visualizer.bench import bytes_per_token


def test_bytes_per_token_measures_every_detail_level_and_a_70b_frame(tiny_llama):
    sizes = bytes_per_token(tiny_llama)
    small = [sizes[f"bytes_per_token_smollm2_{n}"] for n in ("compact", "reduced", "full")]
    assert 0 < small[0] < small[1] <= small[2]
    big = sizes["bytes_per_token_llama3_70b_compact"], sizes["bytes_per_token_llama3_70b_reduced"]
    assert small[0] < big[0] < big[1]
    assert big[1] > 81 * 8192 * 2  # a reduced frame carries the 81 rows of the stream, float16


def test_the_unembedding_figures_are_real_times(tiny_llama):
    """The unembedding's figures (stock, the capture's, and what the lens adds) are timed on a
    real token's residual stream: finite, and the products take time."""
    import math

    from visualizer.bench import unembedding_ms

    figures = unembedding_ms(tiny_llama, calls=5)
    assert set(figures) == {"unembed_ms_stock", "unembed_ms", "lens_ms"}
    assert all(math.isfinite(v) for v in figures.values())
    assert 0 < figures["unembed_ms_stock"] < 1000 and 0 < figures["unembed_ms"] < 1000
