"""The operator's window, in a process of its own (render/operator_view.py starts it): what the
speaker needs on the laptop while the hall sees the clean picture. Drawn with pygame's 2D
surfaces, no GL, so it costs the render loop nothing: the cue on stage and its note in large
type, the next cue, the talk's time, the hall's picture small, the answer and the prompt being
typed, and a line of what runs (the model's state, tok/s, frames a second, REC, the stream, the
blackout) and of warnings. Its keys go back to the App, which takes them as its own window's.

It redraws when a glance arrives (four times a second), and ends when its pipe from the
App ends (the App quit, or died) or the operator closes it.
"""

import os

import msgspec
import pygame

from visualizer.render.layers.text import Fonts
from visualizer.render.layers.words import wrap


class Picture(msgspec.Struct, frozen=True):
    """The audience's picture, small: rows of RGB bytes, top row first."""

    width: int
    height: int
    rgb: bytes


class Glance(msgspec.Struct, frozen=True):
    """What the operator's window shows, as the App had it at one frame."""

    talk: str = ""  # the cue file's name ("" without a cue list)
    cue: int = 0  # the cue on stage, from 1 (0: the show has not begun)
    cues: int = 0
    heading: str = ""
    note: str = ""
    next_heading: str = ""
    next_note: str = ""
    show_on: bool = False  # the clicker's keys step the show (Esc left it)
    talk_s: float | None = None  # seconds since the show's first cue
    state: str = ""  # the model's: loading, ready, generating …
    model: str = ""
    rate: str = ""  # the model's tok/s, or what the frames are instead
    fps: float = 0.0
    recording: str = ""  # the file being recorded
    recording_s: float = 0.0
    streaming: str = ""  # the stream's address
    scene: str = ""
    blackout: bool = False
    paused: bool = False
    typing: str | None = None  # the prompt box, open (None: closed)
    prompt: str = ""
    answer: str = ""
    changed: str = ""  # what the model is changed by
    notices: tuple[str, ...] = ()  # the newest, as the window's HUD had them
    errors: tuple[str, ...] = ()  # shader errors, the model's failure
    picture: Picture | None = None  # None: as before


class Key(msgspec.Struct, frozen=True, tag=True):
    """A key pressed in the operator's window (SDL's key code and modifiers)."""

    key: int
    mod: int


class Text(msgspec.Struct, frozen=True, tag=True):
    """Text typed in it (SDL's TEXTINPUT: a clicker's B or ".", a prompt's letters)."""

    text: str


class Closed(msgspec.Struct, frozen=True, tag=True):
    """The operator closed the window."""


FromWindow = Key | Text | Closed


BACKGROUND = (12, 14, 20)
PANEL = (28, 32, 44)
TEXT = (236, 238, 242)
DIM = (160, 168, 184)
ACCENT = (255, 196, 64)
RED = (255, 84, 84)
FPS = 30  # how often it looks for keys and glances
MARGIN = 0.025  # of the width
KEYS_HINT = ("PageDown / PageUp  cue    B  black    F5  start    Esc  leave the show    "
             "Enter  a prompt")


def clock_text(seconds: float | None) -> str:
    """A talk's time as m:ss (h:mm:ss past an hour); 0:00 before its first cue."""
    if seconds is None:
        return "0:00"
    s = int(seconds)
    h, m = divmod(s // 60, 60)
    return f"{h}:{m:02d}:{s % 60:02d}" if h else f"{m}:{s % 60:02d}"


def wrapped(fonts: Fonts, text: str, size: int, width: int) -> list[str]:
    """`text` in lines no wider than `width` pixels, its own lines kept (words.wrap's)."""
    return [line for paragraph in text.splitlines() or [""]
            for line in wrap(paragraph, fonts, size, width)]  # fmt: skip


class Board:
    """The operator's window's picture, drawn from the newest glance onto `surface`."""

    def __init__(self, surface: pygame.Surface) -> None:
        self.surface = surface
        self.fonts = Fonts()
        self.glance = Glance()
        self.picture: pygame.Surface | None = None

    def take(self, glance: Glance) -> None:
        self.glance = glance
        if glance.picture is not None:
            self.picture = _surface(glance.picture)

    def _text(self, text: str, xy: tuple[int, int], size: int, colour=TEXT,
              bold: bool = False) -> int:  # fmt: skip
        """One line at `xy` (left, top); its height."""
        image = self.fonts.get(size, bold).render(text, True, colour)
        self.surface.blit(image, xy)
        return image.get_height()

    def _block(self, text: str, rect: pygame.Rect, size: int, colour=TEXT) -> int:
        """Wrapped text inside `rect` (what does not fit is cut, its last line marked …); the
        height used."""
        font = self.fonts.get(size)
        lines = wrapped(self.fonts, text, size, rect.width)
        fit = max(rect.height // font.get_linesize(), 1)
        if len(lines) > fit:
            lines = lines[: fit - 1] + [lines[fit - 1] + " …"]
        step = font.get_linesize()
        for i, line in enumerate(lines):
            self.surface.blit(font.render(line, True, colour), (rect.x, rect.y + i * step))
        return len(lines) * step

    def draw(self) -> None:
        g, s = self.glance, self.surface
        w, h = s.get_size()
        m = round(w * MARGIN)
        unit = max(h / 720, 0.5)  # type is sized from a 720-pixel-high window
        s.fill(BACKGROUND)
        top = m
        cue = f"cue {g.cue} / {g.cues}" if g.cues else "no cue list"
        if g.cues and g.cue == 0:
            cue = f"{g.cues} cues: PageDown starts the show"
        self._text(cue, (m, top), round(22 * unit), DIM)
        timer = self.fonts.get(round(44 * unit), True).render(
            clock_text(g.talk_s), True, DIM if g.talk_s is None else ACCENT)
        s.blit(timer, (w - m - timer.get_width(), top))
        top += round(30 * unit)
        self._text(g.heading or g.talk or "", (m, top), round(34 * unit), TEXT, bold=True)
        top += round(56 * unit)
        if g.cues and not g.show_on:
            top += self._text("show left: PageDown goes on, F5 starts again, Esc quits",
                              (m, top), round(20 * unit), ACCENT)  # fmt: skip
        left_w = round(w * 0.52)
        body = pygame.Rect(m, top, left_w - m, h - top - round(96 * unit))
        used = self._block(g.note or "(no note)", body, round(26 * unit), TEXT if g.note else DIM)
        body.y += used + round(16 * unit)
        body.height -= used + round(16 * unit)
        if g.cues and body.height > 0:
            after = f"next: {g.next_heading}" if g.next_heading else "next: (the last cue)"
            body.y += self._text(after, (body.x, body.y), round(22 * unit), ACCENT)
            if g.next_note and body.height > 40 * unit:
                body.height -= round(28 * unit)
                self._block(g.next_note, body, round(18 * unit), DIM)
        self._right(pygame.Rect(left_w + m, m + round(84 * unit), w - left_w - 2 * m,
                                h - 2 * m - round(180 * unit)), unit)  # fmt: skip
        self._status(m, h - m - round(62 * unit), w - 2 * m, unit)

    def _right(self, rect: pygame.Rect, unit: float) -> None:
        """The hall's picture, the prompt being typed, and the answer under it."""
        g, s = self.glance, self.surface
        if self.picture is not None:
            pw, ph = self.picture.get_size()
            scale = min(rect.width / pw, rect.height * 0.6 / ph)
            size = (max(round(pw * scale), 1), max(round(ph * scale), 1))
            s.blit(pygame.transform.smoothscale(self.picture, size), rect.topleft)
            pygame.draw.rect(s, DIM, (*rect.topleft, *size), 1)
            label = "the hall sees: black" if g.blackout else f"the hall sees: {g.scene}"
            y = rect.y + size[1] + round(6 * unit)
            y += self._text(label, (rect.x, y), round(16 * unit), ACCENT if g.blackout else DIM)
        else:
            y = rect.y
        y += round(8 * unit)
        if g.typing is not None:
            box = pygame.Rect(rect.x, y, rect.width, round(34 * unit))
            pygame.draw.rect(s, PANEL, box)
            self._text(f"Ask: {g.typing}▏", (box.x + 8, box.y + 4), round(20 * unit), ACCENT)
            y += box.height + round(8 * unit)
        said = f"{g.prompt}  →  {g.answer}" if g.prompt else g.answer
        self._block(said.strip(), pygame.Rect(rect.x, y, rect.width, rect.bottom - y),
                    round(18 * unit), DIM)  # fmt: skip

    def _status(self, x: int, y: int, width: int, unit: float) -> None:
        """A line of what runs, and one of warnings (or the keys)."""
        g = self.glance
        parts = [g.state or "starting", g.rate, f"{g.fps:.0f} fps", g.model]
        if g.paused:
            parts.append("paused")
        if g.changed:
            parts.append(f"changed: {g.changed}")
        self._text("   ·   ".join(p for p in parts if p), (x, y), round(18 * unit), DIM)
        right = []
        if g.streaming:
            right.append((f"STREAM {g.streaming}", ACCENT))
        if g.recording:
            name = os.path.basename(g.recording)
            right.append((f"● REC {clock_text(g.recording_s)} {name}", RED))
        at = x + width
        for text, colour in reversed(right):
            image = self.fonts.get(round(18 * unit), True).render(text, True, colour)
            at -= image.get_width()
            self.surface.blit(image, (at, y))
            at -= round(24 * unit)
        y += round(30 * unit)
        if g.errors:
            self._text("⚠ " + "   ·   ".join(g.errors), (x, y), round(18 * unit), RED)
        elif g.notices:
            self._text("   ·   ".join(reversed(g.notices)), (x, y), round(18 * unit), ACCENT)
        else:
            self._text(KEYS_HINT, (x, y), round(16 * unit), DIM)


def _surface(picture: Picture) -> pygame.Surface:
    return pygame.image.frombuffer(picture.rgb, (picture.width, picture.height), "RGB").copy()


def serve(audience_display: int, size: tuple[int, int], glances, keys) -> None:
    """The window until its pipe ends or it is closed: glances in, keys out."""
    pygame.display.init()
    screens = pygame.display.get_num_displays()
    display = 0 if audience_display != 0 or screens < 2 else 1  # the screen the hall does not see
    if screens < 2:  # one screen for both (a rehearsal): this one in its corner, not over the other
        os.environ["SDL_VIDEO_WINDOW_POS"] = "0,0"
    surface = pygame.display.set_mode(size, pygame.RESIZABLE, display=display)
    pygame.display.set_caption("neuroweb: operator")
    pygame.key.start_text_input()
    board, clock, shown = Board(surface), pygame.time.Clock(), None
    decoder = msgspec.msgpack.Decoder(Glance)
    try:
        while True:
            for event in pygame.event.get():
                if event.type in (pygame.QUIT, pygame.WINDOWCLOSE):
                    keys.send_bytes(msgspec.msgpack.encode(Closed()))
                    return
                if event.type == pygame.KEYDOWN:
                    keys.send_bytes(msgspec.msgpack.encode(Key(event.key, event.mod)))
                elif event.type == pygame.TEXTINPUT:
                    keys.send_bytes(msgspec.msgpack.encode(Text(event.text)))
                elif event.type in (pygame.VIDEORESIZE, pygame.WINDOWSIZECHANGED):
                    board.surface, shown = pygame.display.get_surface(), None
            while glances.poll():
                board.take(decoder.decode(glances.recv_bytes()))
                shown = None
            if shown is not board.glance:
                board.draw()
                pygame.display.flip()
                shown = board.glance
            clock.tick(FPS)
    except (EOFError, OSError, BrokenPipeError):  # the App ended: so does its operator's window
        return
    finally:
        pygame.display.quit()
