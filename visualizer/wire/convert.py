"""The app's interventions and statuses as message bodies, and back. What comes in is checked
as the rest of the app checks it: an intervention's spelling as the command line does, an
architecture's sizes against their ranges before a client allocates for them."""

import json

import msgspec

from visualizer.architecture import Architecture
from visualizer.config import explain
from visualizer.errors import UserError
from visualizer.handoff import Status
from visualizer.interventions import Interventions, interventions_from
from visualizer.wire.limits import MAX_BLOCKS, MAX_TEXT, ArchitectureSize
from visualizer.wire.messages import InterventionsSpec, StatusBody, WireError


def interventions_to(interventions: Interventions, ghost: bool) -> InterventionsSpec:
    return InterventionsSpec(tuple(a.spec for a in interventions.ablations),
                             tuple(s.spec for s in interventions.steering), ghost)  # fmt: skip


def interventions_of(spec: InterventionsSpec) -> tuple[Interventions, bool]:
    """A request's interventions, each spelling checked as the command line checks it."""
    try:
        return interventions_from(spec.ablate, spec.steer, "interventions."), spec.ghost
    except UserError as exc:
        raise WireError("schema", str(exc)) from None


def status_to(status: Status, described: bool) -> StatusBody:
    """`described`: with the architecture and config (once per session: they are large)."""
    arch = config = None
    if described and status.architecture is not None:
        arch = status.architecture.to_json()
        config = json.dumps(status.config)
    return StatusBody(status.state, status.message[:MAX_TEXT], min(max(status.progress, 0), 1),
                      status.request, status.model[:MAX_TEXT], status.prompt, arch,
                      config)  # fmt: skip


def status_from(body: StatusBody, known: Status | None) -> Status:
    """A status from the server; what it leaves out (architecture, config) is `known`'s."""
    arch = known.architecture if known is not None else None
    config = known.config if known is not None else None
    if body.architecture is not None:
        try:
            sizes = msgspec.convert(body.architecture, ArchitectureSize)
        except msgspec.ValidationError as exc:
            raise WireError("schema", f"status: architecture.{explain(exc)[0]}") from None
        if sizes.blocks.value is None or sizes.blocks.value > MAX_BLOCKS or (
                len(sizes.block) != sizes.blocks.value):  # fmt: skip
            raise WireError("schema", f"status: architecture: blocks must be 0..{MAX_BLOCKS}, "
                                      "one description each")  # fmt: skip
        try:
            arch = Architecture.from_json(body.architecture)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise WireError("schema", f"status: architecture: {exc}") from None
        try:
            config = json.loads(body.config or "null")
        except json.JSONDecodeError as exc:
            raise WireError("schema", f"status: config: {exc}") from None
    return Status(body.state, body.message, body.progress, body.request, body.model, arch,
                  body.prompt, config)  # fmt: skip
