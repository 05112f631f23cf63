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



def test_lens_ms_is_timed_once_the_screen_is_settled(tiny_llama):
    """The lens's own figure is taken after the screen's packing thread has finished (while
    it runs, the lens and the packing share the cores), and is a real, finite time."""
    import math
    import threading

    from visualizer.bench import lens_ms
    from visualizer.model.capture import PACKING_THREAD

    ms = lens_ms(tiny_llama, calls=5)
    assert not [t for t in threading.enumerate() if t.name == PACKING_THREAD]
    assert 0 < ms < 1000 and math.isfinite(ms)
