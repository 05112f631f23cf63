"""The blackout (B, or a clicker's blank-screen key): the whole picture faded toward black, over
every scene and panel, by `overlay.blackout` (0..1, eased by the app over 0.5 s). It is the last
layer drawn, before the flash limiter, so a recording gets it too and no pressing of the key,
however fast, can make the picture flash."""

from visualizer.render.layers.layer import Kit, Layer, LayerInput


class Blackout(Layer):
    stage = "chrome"

    def __init__(self, kit: Kit) -> None:
        self.painter = kit.painter

    def draw(self, frame: LayerInput) -> None:
        amount = frame.overlay.blackout
        if amount <= 0.0:
            return
        p = self.painter
        p.begin(frame.size)  # what the layers before queued is drawn first, held quads too
        p.flush()
        p.rect(0, 0, *frame.size, (0.0, 0.0, 0.0, min(amount, 1.0)))
        p.flush()
