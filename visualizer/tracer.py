"""`neuroweb trace`: run the model once, in this process, and write every position to an .npz.
`run_model` is also how `neuroweb render --prompt` gets its frames."""

import sys
from pathlib import Path

from visualizer import __version__
from visualizer.config import Settings
from visualizer.errors import UserError
from visualizer.terminal import show_progress
from visualizer.trace import TraceBuilder, write_trace


def trace_command(settings: Settings, prompt: str, out: Path) -> int:
    if out.is_dir() or not out.parent.is_dir():
        raise UserError(f"--out {out}: not a writable file path (does its folder exist?)")
    builder, meta = run_model(settings, prompt)
    try:
        write_trace(out, builder, meta)
    except OSError as exc:
        raise UserError(f"--out {out}: cannot write: {exc.strerror}") from None
    print(
        f"wrote {out} ({builder.rows} positions, {meta['n_prompt']} from the prompt)",
        file=sys.stderr,
    )
    return 0


def _generating(done: int, limit: int) -> None:
    """An updating line on a terminal; every 16th token in a log."""
    line = f"generating {done}/{limit} tokens"
    if sys.stderr.isatty():
        print(f"\r\033[K{line}", end="", file=sys.stderr, flush=True)
    elif done % 16 == 0:
        print(line, file=sys.stderr, flush=True)


def run_model(settings: Settings, prompt: str) -> tuple[TraceBuilder, dict]:
    """Load the model, answer `prompt`, and return every frame (`builder.frames`) with the run's
    description.

    The frames are kept as a trace keeps them (float16, the newest `capture.trace_window`
    positions of attention), so a long run fits in memory and a render from a prompt draws
    what a render of its trace would."""
    import torch

    from visualizer.model.generate import generate_frames
    from visualizer.model.load import load_model

    if settings.model.threads:
        torch.set_num_threads(settings.model.threads)
    lm = load_model(
        settings.model.name, trust_pickle=settings.model.trust_pickle, progress=show_progress
    )
    notes: list[str] = list(lm.architecture.notes)

    def notice(text: str) -> None:
        notes.append(text)
        print(f"neuroweb: {text}", file=sys.stderr)

    gen = settings.generation
    builder = TraceBuilder(settings.capture.trace_window, gen.max_tokens + min(gen.context, 4096))
    generated = 0
    for frame in generate_frames(lm, prompt, gen, settings.capture, notice=notice):
        builder.add(frame)
        if not frame.is_prompt:
            generated += 1
            _generating(generated, gen.max_tokens)
    if sys.stderr.isatty():
        print(file=sys.stderr)  # end the updating line
    meta = {
        "model": lm.name,
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
        "model_config": lm.model.config.to_dict(),
        "architecture": lm.architecture.to_json(),
        "text": "".join(f.text for f in builder.frames),
        "neuroweb_version": __version__,
    }
    return builder, meta
