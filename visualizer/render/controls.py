"""Keyboard and mouse → commands for the app.

Typing and single-key commands share the keyboard: while the model is idle (nothing being
generated or waiting to be shown) typed text goes to the prompt box; while it is generating,
letters are commands and Enter (or Tab) opens the box to type the next prompt. Ctrl+letter is
the command at any time. Esc quits.

A talk's cue list (cues.py) makes the keys a presentation clicker's while its show is on: letters
are commands even while the model is idle (Enter or Tab opens the box to type a prompt),
PageDown and → go to the next cue, PageUp and ← to the previous, Esc leaves the show (the keys
are as without one; a second Esc quits) and F5 starts it again at the first cue. Clickers send
their blank-screen button as B or ".": B is the blackout wherever letters are commands, and "."
also into an empty prompt box (no prompt begins with a full stop), while an idle box without a
show takes B as the first letter of a prompt (Ctrl+B blacks out at any time). Both are read as
typed text (SDL's TEXTINPUT), as every letter command is: a clicker's key gives one, as a
keyboard's does, and reading its KEYDOWN as well would act on one press twice.

  Enter  send the prompt      Space / Ctrl+Space  pause, resume    →  one token while paused
  ↑ / ↓  temperature ± 0.1    F  fullscreen   H  HUD   S  poster (PNG)   R  record   M  mute
  1 / 2  the neural web / the architecture (crossfading)      Esc  quit (in a show: leave it)
  B / .  fade to black and back     PageDown / PageUp  next / previous cue    F5  start the show
  L  the logit lens on / off
  [ / ]  choose a block       K  its MLP off / on   J  its attention off / on
  V  the preset's steering on / off  (an intervention applies from the next token)
  mouse drag  orbit           wheel  zoom
"""

from dataclasses import dataclass

import pygame

from visualizer.cues import Show

LETTER_COMMANDS = {" ": "pause", "f": "fullscreen", "h": "hud", "s": "screenshot",
                   "r": "record", "m": "mute", "1": "scene", "2": "scene", "l": "lens",
                   "[": "block", "]": "block", "k": "ablate", "j": "ablate",
                   "v": "steer", "b": "blackout", ".": "blackout"}  # fmt: skip
CTRL_KEYS = {pygame.K_SPACE: "pause", pygame.K_f: "fullscreen", pygame.K_h: "hud",
             pygame.K_s: "screenshot", pygame.K_r: "record", pygame.K_m: "mute",
             pygame.K_1: "scene", pygame.K_2: "scene", pygame.K_l: "lens",
             pygame.K_LEFTBRACKET: "block", pygame.K_RIGHTBRACKET: "block",
             pygame.K_k: "ablate", pygame.K_j: "ablate", pygame.K_v: "steer",
             pygame.K_b: "blackout"}  # fmt: skip
CUE_KEYS = {pygame.K_PAGEDOWN: 1, pygame.K_PAGEUP: -1}  # with a cue list, in or out of its show
ARROWS = {pygame.K_RIGHT: 1, pygame.K_LEFT: -1}  # in a show: cues; else → steps a paused answer
# what a key's command is about: the scene it shows, the block it moves to, the part it ablates
VALUES = {"1": 0, "2": 1, pygame.K_1: 0, pygame.K_2: 1, "[": -1, "]": 1,
          pygame.K_LEFTBRACKET: -1, pygame.K_RIGHTBRACKET: 1, "k": "mlp", "j": "attn",
          pygame.K_k: "mlp", pygame.K_j: "attn"}  # fmt: skip
MAX_PROMPT_CHARS = 4000


@dataclass(frozen=True)
class Command:
    name: str  # a name in commands.COMMANDS, the one table that runs them
    value: object = None  # what it is about: the scene, the block's step, a prompt …


class Controls:
    def __init__(self, exit_keys: tuple[frozenset[str], str] | None = None) -> None:
        """`exit_keys` (modifiers, key) locks the controls for a kiosk: nothing works but that
        combination, which quits (and a window close or signal, which quit anyway)."""
        self.box: str | None = None  # the prompt being typed; None = the box is closed
        self.exit_keys = exit_keys
        self.show: Show | None = None  # a talk's cue list, if one is loaded
        self._dragging = False

    @property
    def locked(self) -> bool:
        return self.exit_keys is not None

    @property
    def in_show(self) -> bool:
        """A cue list's show is on: the keys are the clicker's."""
        return self.show is not None and self.show.on

    def typing(self, idle: bool) -> str | None:
        """The prompt box as shown: open while idle (not in a show), or once opened with
        Enter/Tab."""
        if self.locked:
            return None
        if self.box is not None:
            return self.box
        return "" if idle and not self.in_show else None

    def handle(self, event: pygame.event.Event, idle: bool) -> list[Command]:
        if event.type in (pygame.QUIT, pygame.WINDOWCLOSE):
            return [Command("quit")]
        if self.locked:
            return [Command("quit")] if self._is_exit(event) else []
        if event.type == pygame.KEYDOWN:
            return self._key(event, idle)
        if event.type == pygame.TEXTINPUT:
            text = self.typing(idle)
            if text is not None and (text or event.text != "."):  # "." first: a clicker's
                self.box = (text + event.text)[:MAX_PROMPT_CHARS]
                return []
            name = LETTER_COMMANDS.get(event.text.lower())
            return [Command(name, VALUES.get(event.text.lower()))] if name else []
        if event.type == pygame.MOUSEBUTTONDOWN and event.button == 1:
            self._dragging = True
        elif event.type == pygame.MOUSEBUTTONUP and event.button == 1:
            self._dragging = False
        elif event.type == pygame.MOUSEMOTION and self._dragging:
            return [Command("orbit", event.rel)]
        elif event.type == pygame.MOUSEWHEEL:
            return [Command("zoom", event.precise_y if hasattr(event, "precise_y") else event.y)]
        return []

    def _is_exit(self, event: pygame.event.Event) -> bool:
        if event.type != pygame.KEYDOWN:
            return False
        mods, key = self.exit_keys
        held = {name for name, flag in (("ctrl", pygame.KMOD_CTRL), ("shift", pygame.KMOD_SHIFT),
                                        ("alt", pygame.KMOD_ALT)) if event.mod & flag}  # fmt: skip
        return held == mods and event.key == ord(key)  # pygame: K_a == ord("a")

    def _key(self, event: pygame.event.Event, idle: bool) -> list[Command]:
        key = event.key
        if key == pygame.K_ESCAPE:
            return [Command("show", False) if self.in_show else Command("quit")]
        if event.mod & pygame.KMOD_CTRL and key in CTRL_KEYS:
            return [Command(CTRL_KEYS[key], VALUES.get(key))]
        if self.show is not None:
            if key == pygame.K_F5:
                return [Command("show", True)]
            step = CUE_KEYS.get(key) or (ARROWS.get(key) if self.show.on else None)
            if step:
                return [Command("cue", step)]
        if key == pygame.K_RIGHT:
            return [Command("step")]
        if key in (pygame.K_UP, pygame.K_DOWN):
            return [Command("temperature", 0.1 if key == pygame.K_UP else -0.1)]
        if key in (pygame.K_RETURN, pygame.K_KP_ENTER, pygame.K_TAB):
            text = self.typing(idle)
            if text is None:  # generating: open the box for the next prompt
                self.box = ""
                return []
            self.box = None
            return [Command("generate", text)] if text.strip() else []
        if key == pygame.K_BACKSPACE and self.box:
            self.box = self.box[:-1]
        return []
