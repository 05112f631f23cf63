"""`neuroweb bench`'s own pieces that need no minutes of measuring: the wire sizes it reports
are those of real frames, and grow with what each detail level carries."""

from visualizer.bench.remote import bytes_per_token


def test_bytes_per_token_measures_every_detail_level_and_a_70b_frame(tiny_llama):
    sizes = bytes_per_token(tiny_llama)
    small = [sizes[f"bytes_per_token_smollm2_{n}"] for n in ("compact", "reduced", "full")]
    assert 0 < small[0] < small[1] <= small[2]
    big = sizes["bytes_per_token_llama3_70b_compact"], sizes["bytes_per_token_llama3_70b_reduced"]
    assert small[0] < big[0] < big[1]
    assert big[1] > 81 * 8192 * 2  # a reduced frame carries the 81 rows of the stream, float16


def test_the_unembedding_figures_are_real_times(tiny_llama, monkeypatch):
    """The unembedding's figures (stock, the capture's, and what the lens adds) are timed on a
    real token's residual stream: with the unembedding slowed on purpose by a sleep of DELAY
    per product, the stock and the capture's figures each grow past the plain ones and to at
    least DELAY, and the lens's (with-lens minus the capture's, one product on each side)
    stays under DELAY."""
    import math
    import time

    import torch

    from visualizer.bench.decode import unembedding_ms
    from visualizer.model import unembed

    delay_ms = 200.0  # far above what a loaded machine adds to a tiny model's product
    plain = unembedding_ms(tiny_llama, calls=5)
    assert set(plain) == {"unembed_ms_stock", "unembed_ms", "lens_ms"}
    assert all(math.isfinite(v) for v in plain.values())
    assert 0 < plain["unembed_ms_stock"] < 1000 and 0 < plain["unembed_ms"] < 1000

    weight = tiny_llama.parts.unembed.weight
    linear, product = torch.nn.functional.linear, unembed.product

    def slow_linear(x, w, b=None):  # the stock figure: F.linear on the unembedding's weight
        if w.data_ptr() == weight.data_ptr():
            time.sleep(delay_ms / 1e3)
        return linear(x, w, b)

    def slow_product(layer):  # the capture's: the product its hooks run (unembed.product)
        run = product(layer)

        def slowly(rows):
            time.sleep(delay_ms / 1e3)
            return run(rows)

        return slowly

    monkeypatch.setattr(torch.nn.functional, "linear", slow_linear)
    monkeypatch.setattr(unembed, "product", slow_product)
    slow = unembedding_ms(tiny_llama, calls=5)
    # medians of calls that each slept DELAY at least (time.sleep never wakes early)
    for name in ("unembed_ms_stock", "unembed_ms"):
        assert slow[name] >= delay_ms and slow[name] > plain[name], (name, plain, slow)
    assert slow["lens_ms"] < delay_ms, (plain, slow)  # the product's DELAY left out of it


def test_a_stream_s_latency_is_measured_on_every_marked_frame():
    """The stream's latency figure: every bright frame handed to a real stream (the bundled
    ffmpeg encoding, UDP on loopback, a reader decoding) comes back and is timed, later than
    it was sent and within a second."""
    from visualizer.bench.stream import stream_latency

    figures = stream_latency((160, 90), fps=15, bright_frames=2)
    assert figures["stream_latency_seen"] == figures["stream_latency_sent"] == 2
    assert 0 < figures["stream_latency_ms_median"] <= figures["stream_latency_ms_max"] < 1000
