"""What every scene shows on top (`Chrome`): a glitch's word flash, the loading screen (or a
lost server being looked for), a replay's and an intervention's notes, the prompt box, the HUD,
errors and notices."""

from visualizer.render.layers.layer import LayerInput, Overlay
from visualizer.render.layers.panels import RED, Panel
from visualizer.render.layers.words import visible

REPLAY = "↻ a replay of an earlier answer, while the model loads"


def loading_screen(state: str, rows: int) -> bool:
    """The loading screen is what a frame shows: the model starting or loading, and nothing of
    it in the scene yet (no web at rest, no replayed answer)."""
    return state in ("starting", "loading") and rows == 0


class Chrome(Panel):
    """What every scene shows on top."""

    stage = "chrome"

    def draw(self, frame: LayerInput) -> None:
        """Over whichever scene is shown, at the output's size."""
        scene, o, time = frame.scene, frame.overlay, frame.time
        w, h = self.begin(frame)
        if o.flash > 0 and o.flash_word:
            self.painter.rect(0, 0, w, h, (*self.text[:3], o.flash))
            self.painter.text(visible(o.flash_word), w / 2, 0.36 * h, round(0.22 * h),
                              (*self.ink[:3], o.flash), bold=True, anchor="center")  # fmt: skip
        if loading_screen(o.state, scene.rows) or o.state == "reconnecting":
            self._loading(o, w, h, time)
        if o.replay:
            self._lines((REPLAY,), 0.5 * w, 0.085 * h, round(0.03 * h), self.accent,
                        anchor="center", box=True)  # fmt: skip
        if o.intervene:  # what the model is changed by: never left unsaid
            self._lines((o.intervene,), 0.64 * w, 0.02 * h, round(0.024 * h), self.accent,
                        anchor="center", box=True)  # fmt: skip
        self._prompt_box(o, w, h, time)
        if o.hud:
            self._hud(o, w, h)
        self._lines(o.errors, 0.025 * w, 0.5 * h, round(0.022 * h), RED, box=True)
        self._lines(o.notices, 0.975 * w, 0.9 * h, round(0.024 * h), self.accent,
                    anchor="right", upward=True)  # fmt: skip
        self.painter.flush()

    def _loading(self, o: Overlay, w: int, h: int, time: float) -> None:
        """The model loading, or a lost server being looked for ("reconnecting"), over the
        animated scene."""
        size = round(0.045 * h)
        small = round(0.028 * h)
        reconnecting = o.state == "reconnecting"
        title = "reconnecting" if reconnecting else "waking the model"
        if reconnecting:  # over the scene it was showing: a band to read it on
            self.painter.rect(0, 0.34 * h, w, 0.26 * h, (0, 0, 0, 0.6))
        left = 0.5 * w - self.painter.fonts.width(title + "...", size) / 2  # dots must not jitter
        self.painter.text(title + "." * (1 + int(time * 2) % 3), left, 0.4 * h, size, self.text)
        if reconnecting:
            self.painter.text(o.message, 0.5 * w, 0.5 * h, small, self.dim, anchor="center")
            return
        # the bar: the stages done and what is counted of the current one; the words say
        # which stage it is ("stage 3 of 4: loading the weights, 120 of 272 tensors"), never a
        # percentage (a 70B model's weights sat at a constant "90%" for minutes)
        bar_w, bar_h, x, y = 0.34 * w, 0.014 * h, 0.33 * w, 0.5 * h
        self.painter.rect(x, y, bar_w, bar_h, (1, 1, 1, 0.12))
        self.painter.rect(x, y, bar_w * max(0.02, o.progress), bar_h, self.accent)
        self.painter.text(o.message, 0.5 * w, 0.55 * h, small, self.dim, anchor="center")

    def _prompt_box(self, o: Overlay, w: int, h: int, time: float) -> None:
        size = round(0.034 * h)
        if o.typing is not None:
            cursor = "|" if int(time * 2) % 2 == 0 else " "
            text = visible(o.typing)[-120:]
            box_h = size * 2.0
            top = h - box_h - 0.02 * h
            self.painter.rect(0.03 * w, top, 0.94 * w, box_h, (0.05, 0.07, 0.15, 0.92))
            self.painter.rect(0.03 * w, top + box_h - 2, 0.94 * w, 2, self.accent)
            ask = self.painter.text("Ask:", 0.04 * w, top + size * 0.45, size, self.accent)[0]
            self.painter.text(f"{text}{cursor}", 0.04 * w + ask + size * 0.5, top + size * 0.45,
                              size, self.text)  # fmt: skip
        elif o.interactive and o.state in ("ready", "finished", "stopped"):
            hint = "type a prompt and press Enter"
            self.painter.text(hint, 0.5 * w, 0.95 * h, size, self.dim, anchor="center")

    def _hud(self, o: Overlay, w: int, h: int) -> None:
        """Where it covers nothing: the web's empty left side, or, over the architecture,
        the right of its title band, in two columns of small type."""
        if o.scene_mix <= 0.5:
            self._lines(o.hud, 0.025 * w, 0.1 * h, round(0.022 * h), self.text, box=True)
            return
        size, half = round(0.0135 * h), (len(o.hud) + 1) // 2
        right = self._lines(o.hud[half:], 0.985 * w, 0.01 * h, size, self.text, "right", True)
        self._lines(o.hud[:half], right - 1.2 * size, 0.01 * h, size, self.text, "right", True)
