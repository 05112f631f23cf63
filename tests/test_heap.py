"""heap.steady keeps frame-sized blocks out of the heap even after a larger block was freed
(glibc would otherwise raise its mmap threshold and cut later frames from the heap, where their
holes fragment it). Run in a fresh interpreter each: the setting is for the whole process."""

import ctypes
import subprocess
import sys

import pytest

PROBE = """
import ctypes, sys
from visualizer import heap
if sys.argv[1] == "steady":
    heap.steady()
libc = heap._libc()  # with mallinfo2's result type set
libc.malloc.restype = ctypes.c_void_p
libc.free.argtypes = [ctypes.c_void_p]
libc.free(libc.malloc(4 << 20))  # a large block freed: glibc raises its threshold to 4 MB
before = libc.mallinfo2().hblks
frame = libc.malloc(400 << 10)  # a SmolLM2 frame's size
print(libc.mallinfo2().hblks - before)
"""


def _own_mmaps(mode: str) -> int:
    """How many mmaps of their own a frame-sized block got after a 4 MB block was freed."""
    done = subprocess.run([sys.executable, "-c", PROBE, mode], capture_output=True, text=True,
                          timeout=60, check=True)  # fmt: skip
    return int(done.stdout.split()[-1])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc")
def test_a_frame_gets_its_own_mmap_after_a_larger_block_was_freed() -> None:
    assert _own_mmaps("glibc") == 0  # without it: cut from the heap (what fragmented it)
    assert _own_mmaps("steady") == 1


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc")
def test_usage_counts_a_block_while_it_is_held() -> None:
    """What a soak reports beside the RSS: an 8 MB block is in use while held, and not after."""
    from visualizer import heap

    libc = heap._libc()
    libc.malloc.restype = ctypes.c_void_p
    libc.free.argtypes = [ctypes.c_void_p]
    before = heap.usage_mb()["in_use"]
    block = libc.malloc(8 << 20)
    held = heap.usage_mb()["in_use"]
    libc.free(block)
    assert held - before >= 8
    assert heap.usage_mb()["in_use"] - before < 1


ARENAS = """
import ctypes, re, sys, threading
from visualizer import heap
if sys.argv[1] == "steady":
    heap.steady()
libc = heap._libc()
libc.malloc.restype = libc.fopen.restype = ctypes.c_void_p
libc.malloc_info.argtypes = [ctypes.c_int, ctypes.c_void_p]
libc.fclose.argtypes = [ctypes.c_void_p]
held, ready, done = [], threading.Barrier(9), threading.Event()
def hold():  # each thread allocates while all the others are alive
    held.append(libc.malloc(1000))
    ready.wait()
    done.wait()
threads = [threading.Thread(target=hold) for _ in range(8)]
for t in threads:
    t.start()
ready.wait()
out = libc.fopen(sys.argv[2].encode(), b"w")
libc.malloc_info(0, out)
libc.fclose(out)
done.set()
print(len(re.findall('<heap nr=', open(sys.argv[2]).read())))
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc")
def test_threads_share_a_few_arenas(tmp_path) -> None:
    """Eight threads allocating at once get arenas of their own by default (glibc: up to 8 a
    core); after heap.steady they share ARENAS, so one's free holes are reused by the others."""
    from visualizer import heap

    def arenas(mode: str) -> int:
        done = subprocess.run([sys.executable, "-c", ARENAS, mode, str(tmp_path / "info.xml")],
                              capture_output=True, text=True, timeout=60, check=True)  # fmt: skip
        return int(done.stdout.split()[-1])

    assert arenas("glibc") > heap.ARENAS
    assert arenas("steady") == heap.ARENAS
