"""The C heap of a process that runs for days (a kiosk, a window, a server, the model process):
kept from growing by fragmentation. glibc's malloc only; elsewhere these do nothing.

Why: every frame carries arrays of a few hundred KB (a SmolLM2 frame is 391 KB), made and
freed by the thousand an hour. glibc serves a block that large with its own mmap, until one
such block is freed: it then raises its mmap threshold to that block's size (up to 32 MB),
and every later frame is cut from the heap among small long-lived objects. The freed frames
leave holes that malloc_trim cannot return. Measured on the real model in a kiosk without
faults, after 4 answers: 31.8 MB free inside the heap, 124.8 MB of arena, 282.6 MB RSS, and the
RSS still rising with the answers; with the threshold held at 128 KB: 3.7 MB free, 81.6 MB of
arena, 275.6 MB RSS."""

import ctypes
import functools


class _MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks",
        "fordblks", "keepcost")]  # fmt: skip


M_MMAP_THRESHOLD = -3  # glibc's mallopt parameters (malloc.h)
M_ARENA_MAX = -8
MMAP_BYTES = 128 * 1024  # blocks this large or larger get their own mmap, freed at once
ARENAS = 2  # glibc's default is 8 a core: one a thread here (socket, sound, ZeroMQ's I/O ...)


@functools.cache
def _libc() -> ctypes.CDLL | None:
    libc = ctypes.CDLL(None)  # the process's own C library
    if not (hasattr(libc, "mallopt") and hasattr(libc, "malloc_trim")):
        return None
    if hasattr(libc, "mallinfo2"):
        libc.mallinfo2.restype = _MallInfo2
    return libc


def steady() -> None:
    """Hold the mmap threshold at MMAP_BYTES (setting it turns glibc's raising of it off), so
    that frames come and go in mmaps of their own and never fragment the heap; and share
    ARENAS arenas among all threads, so that the free holes of one thread's arena are reused by
    the others (a served kiosk's heap grew 0.64 MB/h in free space alone over 2 hours, its
    messages decoded on one thread and freed on another)."""
    libc = _libc()
    if libc is not None:
        libc.mallopt(M_MMAP_THRESHOLD, MMAP_BYTES)
        libc.mallopt(M_ARENA_MAX, ARENAS)


def trim() -> None:
    """Hand the heap's free pages back to the system (once an answer: textures and small
    objects still come and go in it)."""
    libc = _libc()
    if libc is not None:
        libc.malloc_trim(0)


def usage_mb() -> dict[str, float] | None:
    """What this process's C heap holds, in MB, over all arenas: in use (the heap's blocks and
    the mmaps of large ones), and free inside the heap (what fragmentation keeps). A soak
    reports it beside the RSS, so that growth is placed: C heap, or elsewhere."""
    libc = _libc()
    if libc is None or not hasattr(libc, "mallinfo2"):
        return None
    info = libc.mallinfo2()
    return {"in_use": (info.uordblks + info.hblkhd) / 2**20, "free": info.fordblks / 2**20}
