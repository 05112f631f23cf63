"""Keyboard and mouse → commands for the app.

Typing and single-key commands share the keyboard: while the model is idle (nothing being
generated or waiting to be shown) typed text goes to the prompt box; while it is generating,
letters are commands and Enter (or Tab) opens the box to type the next prompt. Ctrl+letter is
the command at any time. Esc always quits.

  Enter  send the prompt      Space / Ctrl+Space  pause, resume    →  one token while paused
  ↑ / ↓  temperature ± 0.1    F  fullscreen   H  HUD   S  poster (PNG)   R  record   M  mute
  1 / 2  the neural web / the architecture (crossfading)      Esc  quit
  L  the logit lens on / off
  [ / ]  choose a block       K  its MLP off / on   J  its attention off / on
  V  the preset's steering on / off  (an intervention applies from the next token)
  mouse drag  orbit           wheel  zoom
"""

from dataclasses import dataclass

import pygame

LETTER_COMMANDS = {" ": "pause", "f": "fullscreen", "h": "hud", "s": "screenshot",
                   "r": "record", "m": "mute", "1": "scene", "2": "scene", "l": "lens",
                   "[": "block", "]": "block", "k": "ablate", "j": "ablate",
                   "v": "steer"}  # fmt: skip
CTRL_KEYS = {pygame.K_SPACE: "pause", pygame.K_f: "fullscreen", pygame.K_h: "hud",
             pygame.K_s: "screenshot", pygame.K_r: "record", pygame.K_m: "mute",
             pygame.K_1: "scene", pygame.K_2: "scene", pygame.K_l: "lens",
             pygame.K_LEFTBRACKET: "block", pygame.K_RIGHTBRACKET: "block",
             pygame.K_k: "ablate", pygame.K_j: "ablate", pygame.K_v: "steer"}  # fmt: skip
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
        self._dragging = False

    @property
    def locked(self) -> bool:
        return self.exit_keys is not None

    def typing(self, idle: bool) -> str | None:
        """The prompt box as shown: open while idle, or once opened with Enter/Tab."""
        if self.locked:
            return None
        return self.box if self.box is not None else ("" if idle else None)

    def handle(self, event: pygame.event.Event, idle: bool) -> list[Command]:
        if event.type in (pygame.QUIT, pygame.WINDOWCLOSE):
            return [Command("quit")]
        if self.locked:
            return [Command("quit")] if self._is_exit(event) else []
        if event.type == pygame.KEYDOWN:
            return self._key(event, idle)
        if event.type == pygame.TEXTINPUT:
            if self.box is not None or idle:
                self.box = ((self.box or "") + event.text)[:MAX_PROMPT_CHARS]
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
            return [Command("quit")]
        if event.mod & pygame.KMOD_CTRL and key in CTRL_KEYS:
            return [Command(CTRL_KEYS[key], VALUES.get(key))]
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
