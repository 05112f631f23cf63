"""The web's 2D labels (render/layers/web_text.py, words.py) and the chrome (chrome.py) on real
GL: placed so that none is drawn over another, as the camera turns."""

from dataclasses import replace

import numpy as np
import pytest

from tests.synthetic import synthetic_frame
from visualizer.config import load_settings
from visualizer.features import SceneState
from visualizer.gl.context import HeadlessTarget
from visualizer.gl.shaders import ShaderLibrary
from visualizer.model.lens import lens_rows
from visualizer.render.camera import Camera
from visualizer.render.layers.chrome import Chrome
from visualizer.render.layers.layer import Kit, LayerInput, Overlay
from visualizer.render.layers.text import Painter
from visualizer.render.layers.web_text import WebText, path_tokens
from visualizer.render.layers.words import before_number, lens_caption, quoted_token, token_label

SIZE = (1280, 720)
L, D, D_FF, H = 30, 32, 64, 3  # SmolLM2's depth: its lens reads nine rows
WORDS = " the keeper lit a lamp and the storm came over sea rock light wave night".split()
OVERLAY = Overlay("generating", "", 1.0, "test", L, "a prompt", None, False, None, (), (), ())


def lensed_frame(index: int, rng: np.random.Generator):
    attn = rng.uniform(0.0, 1.0, (L, H, index + 1)).astype(np.float32)
    attn /= attn.sum(-1, keepdims=True)
    frame = synthetic_frame(index, rng.normal(size=(L + 1, D)), np.ones((L, D_FF)), attn,
                            text=f" {WORDS[index % len(WORDS)]}")  # fmt: skip
    rows = [*range(0, L + 1, 4), L]
    ids = np.full((L + 1, 5), -1, np.int32)
    ids[rows] = 1
    probs = np.zeros((L + 1, 5), np.float32)
    probs[rows, 0] = 0.5
    text = tuple((WORDS[(index + r) % len(WORDS)] if r % 8 else "<|endoftext|>") if r in rows
                 else "" for r in range(L + 1))  # fmt: skip
    return replace(frame, lens_ids=ids, lens_probs=probs, lens_text=text)


@pytest.fixture
def drawn():
    """((web text, chrome), boxes) on a real painter whose text() also records each label's
    box, tagged with the WebText method that placed it."""
    target = HeadlessTarget(SIZE)
    library = ShaderLibrary(target.ctx)
    painter = Painter(library)
    kit = Kit(library, painter, load_settings("default").look)
    web, chrome = WebText(kit), Chrome(kit)
    boxes: list[tuple[str, tuple[float, float, float, float], str]] = []
    tag = ["other"]
    text = painter.text

    def recorded(label, x, y, size, colour, bold=False, anchor="left"):
        w, h = text(label, x, y, size, colour, bold, anchor)
        left = x - {"left": 0.0, "center": w / 2, "right": w}[anchor]
        boxes.append((tag[0], (left, y, left + w, y + h), label))
        return w, h

    def tagged(name):
        method = getattr(web, name)

        def call(*args, **kwargs):
            tag[0] = name
            try:
                return method(*args, **kwargs)
            finally:
                tag[0] = "other"

        setattr(web, name, call)

    painter.text = recorded
    for name in ("_lens", "_token_labels"):
        tagged(name)
    target.fbo.use()
    yield (web, chrome), boxes
    painter.release()
    library.release()
    target.close()


def layer_input(scene: SceneState, overlay: Overlay, camera: Camera) -> LayerInput:
    """The frame a layer is given, at SIZE and time 1.0."""
    history = load_settings("default").look.history
    return LayerInput(SIZE, scene, overlay, camera, 1.0, 1.0, 1.0, history)


def _overlap(a, b) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def test_no_word_on_the_token_path_is_drawn_over_the_logit_lens(drawn):
    """The path's words (the newest, the most attended) are skipped where they would land on
    a lens label: "the" beside "a >99%" would read as one label that is not true; and a long
    lens word is cut short rather than run under the candidates ("54%" beside their "¶")."""
    (web, _), boxes = drawn
    rng = np.random.default_rng(1)
    scene = SceneState(load_settings("default").look)
    for i in range(40):
        scene.ingest(lensed_frame(i, rng))
        scene.advance(0.25)
    camera = Camera(load_settings("default").look.drift_deg_s)
    seen = {"_lens": 0, "_token_labels": 0}
    for step in range(72):  # a whole turn of the camera's drift and more
        camera.advance(2.0)
        boxes.clear()
        web.draw(layer_input(scene, OVERLAY, camera))
        lens = [box for tag, box, _ in boxes if tag == "_lens"]
        words = [box for tag, box, _ in boxes if tag == "_token_labels"]
        seen["_lens"] += len(lens)
        seen["_token_labels"] += len(words)
        for word in words:
            assert not any(_overlap(word, label) for label in lens), (step, word)
        assert all(right <= 0.73 * SIZE[0] for _, _, right, _ in lens)  # not under the panel
    assert seen["_lens"] > 72 * 9 and seen["_token_labels"] > 72  # both were drawn
    # the candidates' probabilities are the model's softmax (T = 1), not the sampler's
    assert "next token (softmax)" in [label for _, _, label in boxes]


def test_a_token_named_in_a_sentence_is_never_empty_quotes():
    """The architecture's "block N up close: for … " names the newest token: a space is
    "(space)", a newline "¶", a word is quoted."""
    assert quoted_token(" ") == "(space)" and quoted_token("") == "∅"
    assert quoted_token("\n") == "“¶”" and quoted_token(" Storm") == "“Storm”"
    assert quoted_token("   ") == "(3 spaces)"


def test_distinct_tokens_are_labelled_distinctly():
    """SmolLM2's candidates after an answer were '\\n', '\\n ' and '\\n   ' (a newline, then
    indentation), and all three read '¶'. Only a space that starts a word goes unshown."""
    tokens = ["\n", "\n ", "\n   ", " \n", "\n\n", " ", "  ", "", " Storm", "  Storm", "Storm",
              "\t", " \t", "New York"]
    labels = [token_label(t) for t in tokens]
    assert len(set(labels) - {"Storm"}) == len(tokens) - 2  # " Storm" and "Storm": one word
    assert labels[:4] == ["¶", "¶·", "¶···", "·¶"] and labels[8:11] == ["Storm", "·Storm", "Storm"]


def test_a_token_before_a_number_cannot_be_read_as_part_of_it():
    """The lens's labels put a token before its percentage: on the demo poster "- 28%" read as
    minus 28 %, ". 95%" as 0.95 %, and "1 87%" as 187 %. A token without letters is quoted."""
    labels = {t: before_number(t) for t in ["-", ".", "1", "\n", " in", "<|endoftext|>", " ", ""]}
    assert labels == {"-": "“-”", ".": "“.”", "1": "“1”", "\n": "“¶”", " in": "in",
                      "<|endoftext|>": "<|endoftext|>", " ": "(space)", "": "∅"}  # fmt: skip


def test_the_lens_caption_says_which_layers_were_read():
    """Said from the rows the lens read: a 2-block GPT-2 read at every 4th row has the
    embedding and its last layer only, not "every layer"."""
    assert lens_caption(lens_rows(30, 4), 30) == "every 4th layer + the last"
    assert lens_caption(lens_rows(30, 2), 30) == "every 2nd layer + the last"
    assert lens_caption(lens_rows(12, 3), 12) == "every 3rd layer + the last"
    assert lens_caption(lens_rows(6, 1), 6) == "every layer"
    assert lens_caption(lens_rows(2, 4), 2) == "the embedding and the last layer"
    assert lens_caption([0, 5, 30], 30) == "layers emb, 4, 29"


def test_the_far_end_of_the_path_names_the_first_token_in_view_once_the_context_slid():
    """The sink (the first position in view) is labelled "first token" while that is the
    run's first token, and "first token in view" once the context has slid past it."""
    look = load_settings("default").look
    scene = SceneState(look)
    last = look.history + 5  # the sink is older than the path: drawn at its far end

    def ingest(index: int, context_start: int) -> None:
        attn = np.full((L, H, index - context_start + 1), 0.01, np.float32)
        scene.ingest(synthetic_frame(index, np.ones((L + 1, D)), np.ones((L, D_FF)), attn,
                                     context_start=context_start, text=f" w{index}"))  # fmt: skip

    for index in range(last + 1):
        ingest(index, 0)
    assert path_tokens(scene, look.history)[0].text == "first token: w0"
    ingest(last + 1, 2)  # positions 0–1 slid out of the model's view
    labels = path_tokens(scene, look.history)
    assert labels[2].text == "first token in view: w2" and 0 not in labels


def test_the_loading_screen_says_the_stage_and_prints_no_percentage(drawn):
    """The loading screen draws the load's own words (its stage, and what is counted of it)
    under the bar, and no percentage: a constant one said "90%" for minutes."""
    (_, chrome), boxes = drawn
    message = "stage 3 of 4: loading the weights, 120 of 272 tensors"
    loading = replace(OVERLAY, state="loading", message=message, progress=(2 + 120 / 272) / 4)
    chrome.draw(layer_input(SceneState(load_settings("default").look), loading, Camera(0.0)))
    labels = [label for _, _, label in boxes]
    assert message in labels and not any("%" in label for label in labels), labels
