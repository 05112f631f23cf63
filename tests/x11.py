"""A private X server whose screen the test can read, and real key presses on it.

Xvfb writes its screen to a file (-fbdir, the XWD format), so a test sees what every window
shows, whichever process drew it; XTest (libXtst, as xdotool uses) moves the pointer and
presses keys as a keyboard would, into the window under the pointer (with no window manager,
the keyboard follows the pointer)."""

import ctypes
import os
import struct
import subprocess
from contextlib import contextmanager
from pathlib import Path

import numpy as np

XK = {"Next": 0xFF56, "Prior": 0xFF55, "b": 0x62, "Return": 0xFF0D, "h": 0x68, "i": 0x69}


@contextmanager
def screen(size: tuple[int, int], folder: Path):
    """An Xvfb of `size`, its screen in `folder`; yields its DISPLAY (":N")."""
    read, write = os.pipe()
    server = subprocess.Popen(
        ["Xvfb", "-displayfd", str(write), "-screen", "0", f"{size[0]}x{size[1]}x24",
         "-fbdir", str(folder), "-nolisten", "tcp"],
        pass_fds=(write,), stderr=subprocess.DEVNULL,
    )  # fmt: skip
    os.close(write)
    with os.fdopen(read) as f:
        display = f":{f.readline().strip()}"
    try:
        yield display
    finally:
        server.terminate()
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(10)


def pixels(folder: Path) -> np.ndarray:
    """The screen as RGB rows, top first (the XWD file Xvfb keeps of screen 0)."""
    data = (folder / "Xvfb_screen0").read_bytes()
    header = struct.unpack(">25I", data[:100])
    size, width, height, per_line, colours = header[0], header[4], header[5], header[12], header[19]
    start = size + colours * 12
    rows = np.frombuffer(data, np.uint8, count=per_line * height, offset=start)
    bgrx = rows.reshape(height, per_line)[:, : width * 4].reshape(height, width, 4)
    return bgrx[:, :, [2, 1, 0]]


class Keyboard:
    """XTest on `display`: `press(name, at)` moves the pointer to `at` and presses the key."""

    def __init__(self, display: str) -> None:
        self.x11 = ctypes.CDLL("libX11.so.6")
        self.xtst = ctypes.CDLL("libXtst.so.6")
        self.x11.XOpenDisplay.restype = ctypes.c_void_p
        self.x11.XOpenDisplay.argtypes = [ctypes.c_char_p]
        self.x11.XKeysymToKeycode.argtypes = [ctypes.c_void_p, ctypes.c_ulong]
        self.x11.XFlush.argtypes = self.x11.XCloseDisplay.argtypes = [ctypes.c_void_p]
        self.xtst.XTestFakeKeyEvent.argtypes = [ctypes.c_void_p, ctypes.c_uint, ctypes.c_int,
                                                ctypes.c_ulong]  # fmt: skip
        self.xtst.XTestFakeMotionEvent.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_int,
                                                   ctypes.c_int, ctypes.c_ulong]  # fmt: skip
        self.dpy = self.x11.XOpenDisplay(display.encode())
        assert self.dpy, f"cannot open {display}"

    def press(self, name: str, at: tuple[int, int]) -> None:
        code = self.x11.XKeysymToKeycode(self.dpy, XK[name])
        self.xtst.XTestFakeMotionEvent(self.dpy, -1, at[0], at[1], 0)
        self.xtst.XTestFakeKeyEvent(self.dpy, code, 1, 0)
        self.xtst.XTestFakeKeyEvent(self.dpy, code, 0, 0)
        self.x11.XFlush(self.dpy)

    def close(self) -> None:
        self.x11.XCloseDisplay(self.dpy)
