"""A talk's cue list (`neuroweb run --cues talk.toml`): what the stage shows at each step, the
speaker's note for it, and where the show stands.

A cue changes only what it names; the stage at cue N is cues 1..N laid over the stage the run
began with (`at`), so stepping back with the clicker shows what that cue showed, whatever came
after it. A cue that names `ablate` or `steer` sets what the model changes to exactly those (an
empty list: nothing). The file is decoded by msgspec through these types, and a bad one is
refused with one line naming the file, the line and the key (docs/cues.md).
"""

import re
from pathlib import Path
from typing import Annotated

import msgspec
from msgspec import Meta, structs

from visualizer.config import Path_, Prompt, Scene, Settings, load_settings
from visualizer.errors import UserError
from visualizer.interventions import Interventions, interventions_from
from visualizer.refusals import explain, line_of, read_toml
from visualizer.trace import read_trace

Words = Annotated[str, Meta(max_length=10_000)]
# the whole tower (and a camera that directs itself free again), the top row where the answer
# leaves it, or block N's output row, close; held until a cue frames it otherwise
Framing = Annotated[str, Meta(pattern=r"^(wide|answer|block (0|[1-9][0-9]{0,3}))$",
                              description='"wide", "answer" or "block N"')]  # fmt: skip
Specs = Annotated[tuple[Path_, ...], Meta(max_length=64)]  # as in a preset's [intervene]


class Cue(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One step of a talk; a key left out keeps what the cues before it set."""

    note: Words = ""  # for the speaker: printed on the terminal, never on the audience's picture
    title: Annotated[str, Meta(max_length=200)] = ""  # the cue's name on the terminal
    prompt: Prompt | None = None  # asked of the model when the cue runs
    trace: Path_ | None = None  # or a saved run (`neuroweb trace`) played then, from an .npz
    #                             (a path from the cue file's folder)
    scene: Scene | None = None  # "web" | "architecture"
    preset: Path_ | None = None  # a preset in configs/ or a .toml path: the look, sound, sampling
    ablate: Specs | None = None  # "mlp:10", "attn:3", "head:3.7"
    steer: Annotated[tuple[Path_, ...], Meta(max_length=8)] | None = None  # "8:4:plus|minus"
    tokens: Annotated[int, Meta(ge=1, le=1 << 20)] | None = None  # per answer, from this cue on
    lens: bool | None = None  # the logit lens's words
    camera: Framing | None = None  # "wide", "answer" or "block N": where the camera looks

    def __post_init__(self) -> None:
        if self.prompt is not None and self.trace is not None:
            raise ValueError("trace and prompt together: a cue asks a prompt or plays a trace")
        try:
            interventions_from(self.ablate or (), self.steer or (), "cue.")
        except UserError as exc:
            raise ValueError(str(exc).removeprefix("cue.")) from None

    @property
    def interventions(self) -> Interventions | None:
        """What the model changes from this cue on; None: as before."""
        if self.ablate is None and self.steer is None:
            return None
        return interventions_from(self.ablate or (), self.steer or ())

    @property
    def heading(self) -> str:
        return self.title or self.prompt or self.trace or self.scene or self.camera or ""


class CueFile(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    cue: Annotated[tuple[Cue, ...], Meta(min_length=1, max_length=1000)]


class Show:
    """A loaded cue list and where the show is: before its first cue (`index` -1) until the
    clicker starts it; `on` while the clicker's keys step it (Esc leaves, F5 starts again)."""

    def __init__(self, path: Path, cues: tuple[Cue, ...]) -> None:
        self.path, self.cues = path, cues
        self.index = -1
        self.on = True
        self.base = Cue()  # the stage before the first cue (`begin`)
        self.trace_blocks: dict[int, int] = {}  # a cue's trace: the blocks of its model

    def begin(self, settings: Settings) -> None:
        """The stage before the first cue: the run's scene, lens, answer length and what it
        changes in the model, as its preset and flags set them."""
        look, iv = settings.look, settings.intervene
        self.base = Cue(scene=look.scene, lens=look.lens, tokens=settings.generation.max_tokens,
                        ablate=iv.ablate, steer=iv.steer, camera="wide")  # fmt: skip

    def at(self, index: int) -> Cue:
        """The stage at cue `index`: every key the cues up to it set over the run's own, the
        latest winning."""
        stage = self.base
        for cue in self.cues[: index + 1]:
            given = {k: v for k, v in structs.asdict(cue).items() if v is not None}
            stage = structs.replace(stage, **given)
        own = self.cues[index]  # asked, or played, by its own cue only
        return structs.replace(stage, prompt=own.prompt, trace=own.trace)

    def trace_path(self, cue: Cue) -> Path:
        """A cue's trace file: relative paths are from the cue file's folder."""
        return self.path.parent / Path(cue.trace).expanduser()

    def move(self, to: int) -> int | None:
        """Go to cue `to` (clamped to the list); the index, or None if already there."""
        to = min(max(to, 0), len(self.cues) - 1)
        if to == self.index:
            return None
        self.index = to
        return to

    def check(self, blocks: int, heads: int | None) -> None:
        """UserError naming the file and the cue for a block or head the model does not have."""
        for index, made_by in self.trace_blocks.items():
            if made_by != blocks:
                raise UserError(f"{self.path}: cue {index + 1}: {self.cues[index].trace} is a run "
                                f"of a model with {made_by} blocks; this one has {blocks}")
        for number, cue in enumerate(self.cues, start=1):
            if cue.interventions is not None:
                try:
                    cue.interventions.check(blocks, heads)
                except UserError as exc:
                    raise UserError(f"{self.path}: cue {number}: {exc}") from None
            if cue.camera and cue.camera.startswith("block ") and int(cue.camera[6:]) >= blocks:
                raise UserError(f"{self.path}: cue {number}: camera {cue.camera}: the model has "
                                f"blocks 0–{blocks - 1}")  # fmt: skip


def load_cues(path: Path) -> Show:
    """The cue list in `path`; UserError with file:line and the key for a bad one, including a
    cue's preset that does not load."""
    text, data = read_toml(path, "no such cue file")
    try:
        cues = msgspec.convert(data, CueFile).cue
    except msgspec.ValidationError as exc:
        message, key = explain(exc, data, CueFile)
        at = re.search(r"\$\.cue\[(\d+)\]", str(exc))  # explain's key may drop the index
        if at is None:
            raise UserError(f"{path}:{_line(text, 0, '')}: {message}") from None
        index, leaf = int(at[1]), re.sub(r"^cue(\[\d+\])?\.?", "", key)
        said = re.sub(r"cue(\[\d+\])?\.", "", message)
        raise UserError(f"{path}:{_line(text, index, leaf)}: cue {index + 1}: {said}") from None
    show = Show(path, cues)
    for index, cue in enumerate(cues):
        if cue.trace is not None:
            try:
                hidden = read_trace(show.trace_path(cue)).arrays["hidden"]  # [T, L+1, d]
            except UserError as exc:
                where = _line(text, index, "trace")
                raise UserError(f"{path}:{where}: cue {index + 1}: trace: {exc}") from None
            show.trace_blocks[index] = hidden.shape[1] - 1
        if cue.preset is not None:
            try:
                load_settings(cue.preset)
            except UserError as exc:
                where = _line(text, index, "preset")
                raise UserError(f"{path}:{where}: cue {index + 1}: preset: {exc}") from None
    return show


def _line(text: str, index: int, leaf: str) -> int:
    """The line (from 1) of key `leaf` ("scene") in the `index`th [[cue]] table of a cue file:
    its own line, else the table's first line, else 1."""
    table = f"cue[{index}]"
    return (leaf and line_of(text, f"{table}.{leaf}")) or line_of(text, table) or 1
