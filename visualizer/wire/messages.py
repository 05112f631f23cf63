"""Every message of the wire, one msgspec Struct each, its fields with their bounds (lengths,
ranges, finiteness): a header that does not fit its type is refused with one line naming the
field (codec.unpack). A message's version and type travel in every header."""

from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta

from visualizer.config import GenerationSettings
from visualizer.detail import Detail
from visualizer.wire.limits import (
    MAX_BLOCKS,
    MAX_CANDIDATES,
    MAX_DIM,
    MAX_DIMS,
    MAX_HEADER,
    MAX_PROMPT,
    MAX_TEXT,
)

WIRE_VERSION = 3  # 2: msgspec-typed messages, failures and busy name their request; 3: viewers
PING_S = 1.0
SERVER_STOPPING = "the server stopped during this answer"  # its last status of a cut answer

Text = Annotated[str, Meta(max_length=MAX_TEXT)]
Token = Annotated[str, Meta(max_length=1024)]
Request = Annotated[int, Meta(ge=0, le=2**62)]


class WireError(Exception):
    """A message that must be refused; `code` says why ("version", "auth", "schema", "size")."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class _Message(msgspec.Struct, frozen=True, forbid_unknown_fields=True, tag_field="type",
               kw_only=True):  # fmt: skip
    v: int = WIRE_VERSION


# --- client → server ----------------------------------------------------------------------------


class InterventionsSpec(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Interventions as the command line spells them; parsed by interventions_from."""

    ablate: Annotated[tuple[Annotated[str, Meta(max_length=64)], ...], Meta(max_length=64)] = ()
    steer: Annotated[tuple[Text, ...], Meta(max_length=8)] = ()
    ghost: bool = True


class Hello(_Message, tag="hello", kw_only=True):
    token: Token = ""
    detail: Detail = Detail()
    lossless: bool = False
    credit: Annotated[int, Meta(ge=0, le=4096)] = 0
    watch: bool = False  # a viewer: sent every answer, from its start; asks for none


class Generate(_Message, tag="generate", kw_only=True):
    token: Token = ""
    request: Request
    prompt: Annotated[str, Meta(max_length=MAX_PROMPT)]
    gen: GenerationSettings = GenerationSettings()
    detail: Detail | None = None  # this answer's own (a trace's), else the hello's
    interventions: InterventionsSpec | None = None


class Intervene(_Message, tag="intervene", kw_only=True):
    token: Token = ""
    interventions: InterventionsSpec


class Cancel(_Message, tag="cancel", kw_only=True):
    token: Token = ""


class Ping(_Message, tag="ping", kw_only=True):
    token: Token = ""


class Credit(_Message, tag="credit", kw_only=True):
    token: Token = ""
    n: Annotated[int, Meta(ge=1, le=4096)]


class Bye(_Message, tag="bye", kw_only=True):
    token: Token = ""


ClientMessage = Hello | Generate | Intervene | Cancel | Ping | Credit | Bye

# --- server → client ----------------------------------------------------------------------------

State = Literal["starting", "loading", "ready", "generating", "finished", "stopped"]


class StatusBody(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    state: State
    message: Text = ""
    progress: Annotated[float, Meta(ge=0, le=1)] = 0.0
    request: Request = 0
    model: Text = ""
    prompt: Annotated[str, Meta(max_length=MAX_PROMPT)] = ""
    architecture: dict[str, Any] | None = None  # inspect's JSON, its sizes checked (limits.py)
    config: Annotated[str, Meta(max_length=MAX_HEADER)] | None = None  # JSON text: int keys


class StatusMessage(_Message, tag="status", kw_only=True):
    server: Annotated[str, Meta(max_length=64)]
    status: StatusBody


class ArraySpec(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    name: Annotated[str, Meta(max_length=32)]
    dtype: Literal["<f4", "<f2", "<i8", "<i4", "|i1"]
    shape: Annotated[tuple[Annotated[int, Meta(ge=0, le=MAX_DIM)], ...], Meta(max_length=MAX_DIMS)]


Texts = Annotated[tuple[Token, ...], Meta(max_length=MAX_CANDIDATES)]
Entropy = Annotated[float, Meta(ge=0, le=100)]  # nats: ln of a 10^43-word vocabulary


class GhostHeader(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    token_id: Annotated[int, Meta(ge=0, le=2**40)]
    text: Token
    topk_text: Texts
    entropy: Entropy
    lens_text: Annotated[tuple[Token, ...], Meta(max_length=MAX_BLOCKS + 1)]


class FrameMessage(_Message, tag="frame", kw_only=True):
    seq: Request
    request: Request
    index: Annotated[int, Meta(ge=0, le=2**40)]
    token_id: Annotated[int, Meta(ge=0, le=2**40)]
    text: Token
    is_prompt: bool
    context_start: Annotated[int, Meta(ge=0, le=2**40)]
    topk_text: Texts
    entropy: Entropy
    lens_text: Annotated[tuple[Token, ...], Meta(max_length=MAX_BLOCKS + 1)]
    changed: Annotated[tuple[Text, ...], Meta(max_length=80)] = ()
    ghost: GhostHeader | None = None
    arrays: Annotated[tuple[ArraySpec, ...], Meta(max_length=16)]


class FailureMessage(_Message, tag="failure", kw_only=True):
    message: Text
    user_error: bool
    request: Request = 0


class Busy(_Message, tag="busy", kw_only=True):
    message: Text
    request: Request = 0


class ErrorMessage(_Message, tag="error", kw_only=True):
    code: Literal["version", "auth", "schema", "size", "internal", "viewer"]
    message: Text


ServerMessage = StatusMessage | FrameMessage | FailureMessage | Busy | ErrorMessage
