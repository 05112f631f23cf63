"""`neuroweb trace`: run the model once and write every position to an .npz. `run_model` is also
how `neuroweb render --prompt` and `snapshot --prompt` get their frames."""

import sys
import time
from pathlib import Path

from visualizer import __version__, signals, wire
from visualizer.config import Settings
from visualizer.detail import Detail
from visualizer.errors import Unreachable, UserError
from visualizer.handoff import Status
from visualizer.interventions import Interventions
from visualizer.progress import counter, show_progress
from visualizer.sources import FrameSource, check, open_source
from visualizer.sources.remote import CUT_OFF
from visualizer.trace import TraceBuilder, write_trace

WAIT_S = 30.0  # a drain's wait; a dead model process arrives as a failure before this
GIVE_UP_S = 20.0  # a server lost (or never reached) this long: the trace gives up, exit 1


def trace_command(settings: Settings, prompt: str, out: Path,
                  engine: tuple[str, str | None] = ("hooks", None)) -> int:  # fmt: skip
    """`engine`: ("hooks", None), or ("nnsight", None | "ndif" | "local")."""
    if out.is_dir() or not out.parent.is_dir():
        raise UserError(f"--out {out}: not a writable file path (does its folder exist?)")
    if engine[0] == "nnsight":
        from visualizer.model.nnsight_engine import nnsight_trace

        builder, meta = nnsight_trace(settings, prompt, engine[1])
    else:
        try:
            builder, meta = run_model(settings, prompt)
        except KeyboardInterrupt as stop:  # Ctrl-C, SIGTERM: keep the positions made so far
            builder, meta = getattr(stop, "partial", (None, None))
            if builder is not None and builder.rows and meta:
                meta["notes"] = [*meta["notes"], f"stopped ({signals.name(stop)}) after "
                                 f"{builder.rows} positions"]  # fmt: skip
                meta["n_prompt"] = sum(f.is_prompt for f in builder.frames)
                meta["text"] = "".join(f.text for f in builder.frames)
                write_trace(out, builder, meta)
                stop.kept = f"{out} ({builder.rows} positions)"
            raise
    try:
        write_trace(out, builder, meta)
    except OSError as exc:
        raise UserError(f"--out {out}: cannot write: {exc.strerror}") from None
    print(
        f"wrote {out} ({builder.rows} positions, {meta['n_prompt']} from the prompt)",
        file=sys.stderr,
    )
    return 0


def run_model(settings: Settings, prompt: str) -> tuple[TraceBuilder, dict]:
    """Answer `prompt` through the settings' FrameSource (a local model process, or the server
    of `model.source`) and return every frame (`builder.frames`) with the run's description.
    The source is lossless here: a trace has every position or is not written."""
    with open_source(settings, lossless=True) as source:
        return answer(source, settings, prompt)


def answer(source: FrameSource, settings: Settings, prompt: str,
           interventions: Interventions | None = None) -> tuple[TraceBuilder, dict]:  # fmt: skip
    """run_model's work on a started source (the demo clip's is already loading);
    `interventions`: what the answer changes (the preset's by default).

    The frames arrive as a trace keeps them (float16, the newest `capture.trace_window`
    positions of attention and the sink: the source reduces them before they cross), so a long
    run fits in memory and a render from a prompt draws what a render of its trace would. A
    frame the source dropped fails the run."""
    gen = settings.generation
    detail = Detail("float16", settings.capture.trace_window)
    builder = TraceBuilder(settings.capture.trace_window, gen.max_tokens + min(gen.context, 4096))
    notes: list[str] = []
    meta: dict = {}
    try:
        return _run(source, settings, prompt, gen, detail, builder, notes, meta, interventions)
    except KeyboardInterrupt as stop:
        stop.partial = (builder, meta)
        raise


def _run(source: FrameSource, settings: Settings, prompt: str, gen, detail: Detail,
         builder: TraceBuilder, notes: list[str], meta: dict,
         interventions: Interventions | None = None) -> tuple[TraceBuilder, dict]:
    """answer's work; `meta` is filled in as soon as the model is ready, so an interrupted
    run can still be written."""
    patience = _Patience(source.name)
    ready = _wait_ready(source, patience)
    arch = ready.architecture
    notes += arch.notes if arch is not None else []
    meta.update(_meta(settings, prompt, ready, notes, source.name, builder))
    request = source.generate(prompt, gen, detail, interventions)
    with counter("generating", gen.max_tokens, "tokens") as generated:
        while True:
            batch = source.drain(timeout=WAIT_S)
            check(batch)
            patience.watch(batch.status)
            if batch.dropped:
                raise RuntimeError(f"{source.name} lost {batch.dropped} frames")
            for frame in batch.frames:
                builder.add(frame)
                if not frame.is_prompt:
                    generated.update()
            status = batch.status
            # a connection lost once the request went out: that answer is not whole (the
            # server ends it, or sends the rest to a connection that is gone)
            cut = status.request == request and status.message in (CUT_OFF, wire.SERVER_STOPPING)
            if status.state == "reconnecting" or cut:
                why = status.message if cut else CUT_OFF
                raise Unreachable(f"{source.name}: {why}; no trace written, try again")
            if status.request == request and status.message and status.message not in notes:
                notes.append(status.message)  # a long prompt cut to the window, say
                generated.write(f"neuroweb: {status.message}", file=sys.stderr)
            if status.request == request and status.state in ("finished", "stopped"):
                # every frame came before the status that ends the answer (one pipe or socket,
                # in order): this batch had the last of them. (Waiting for an empty batch
                # first cost a whole WAIT_S when the last frames and the end came together.)
                break
        generated.total = generated.n  # the answer ended here: --tokens was its most
    if not builder.rows:
        raise RuntimeError(f"{source.name} sent no frames")
    meta.update(_meta(settings, prompt, ready, notes, source.name, builder))
    return builder, meta


def _meta(settings: Settings, prompt: str, ready: Status, notes: list[str], source: str,
          builder: TraceBuilder) -> dict:  # fmt: skip
    gen, arch = settings.generation, ready.architecture
    return {
        "model": ready.model,
        "prompt": prompt,
        "n_prompt": sum(f.is_prompt for f in builder.frames),
        "raw": gen.raw,
        "sampling": {
            "temperature": gen.temperature,
            "top_k": gen.top_k,
            "top_p": gen.top_p,
            "seed": gen.seed,
            "max_tokens": gen.max_tokens,
            "context": gen.context,
        },
        "notes": notes,
        "interventions": {"ablate": list(settings.intervene.ablate),
                          "steer": list(settings.intervene.steer),
                          "ghost": settings.intervene.ghost},  # fmt: skip
        "source": source,
        "model_config": ready.config,
        "architecture": arch.to_json() if arch is not None else None,
        "text": "".join(f.text for f in builder.frames),
        "neuroweb_version": __version__,
    }


class _Patience:
    """A lost server (said once by the source's log when it is lost) given up on after
    GIVE_UP_S without an answer: exit 1."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.lost_at: float | None = None

    def watch(self, status: Status) -> None:
        if status.state != "reconnecting":
            self.lost_at = None
        elif self.lost_at is None:
            self.lost_at = time.monotonic()
        elif time.monotonic() - self.lost_at > GIVE_UP_S:
            raise Unreachable(f"{self.name}: no answer for {GIVE_UP_S:g} s; gave up")


def _wait_ready(source: FrameSource, patience: _Patience) -> Status:
    """Until the model is loaded (its progress on stderr); its ready status (or, after an
    answer, its finished one: the model is loaded and waits). Asked first without waiting:
    a model that already waits sends nothing new, and a drain would wait out its WAIT_S."""
    wait = 0.0
    while True:
        batch = source.drain(timeout=wait)
        wait = WAIT_S
        check(batch)
        patience.watch(batch.status)
        if batch.status.state in ("ready", "finished", "stopped"):
            show_progress(1.0, "ready")
            return batch.status
        if batch.status.state == "loading":
            show_progress(batch.status.progress, batch.status.message)
