"""`neuroweb trace`: run the model once, in this process, and write every position to an .npz.
`run_model` is also how `neuroweb render --prompt` gets its frames."""

import sys
from pathlib import Path

from visualizer import __version__
from visualizer.config import Settings
from visualizer.errors import UserError
from visualizer.frame import Frame
from visualizer.terminal import show_progress
from visualizer.trace import write_trace


def trace_command(settings: Settings, prompt: str, out: Path) -> int:
    if out.is_dir() or not out.parent.is_dir():
        raise UserError(f"--out {out}: not a writable file path (does its folder exist?)")
    frames, meta = run_model(settings, prompt)
    try:
        write_trace(out, frames, meta)
    except OSError as exc:
        raise UserError(f"--out {out}: cannot write: {exc.strerror}") from None
    print(
        f"wrote {out} ({len(frames)} positions, {meta['n_prompt']} from the prompt)",
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


def run_model(settings: Settings, prompt: str) -> tuple[list[Frame], dict]:
    """Load the model, answer `prompt`, and return every frame with the run's description."""
    import torch

    from visualizer.model.generate import generate_frames
    from visualizer.model.load import load_model

    if settings.model.threads:
        torch.set_num_threads(settings.model.threads)
    lm = load_model(
        settings.model.name, trust_pickle=settings.model.trust_pickle, progress=show_progress
    )
    notes: list[str] = []

    def notice(text: str) -> None:
        notes.append(text)
        print(f"neuroweb: {text}", file=sys.stderr)

    gen = settings.generation
    frames, generated = [], 0
    for frame in generate_frames(lm, prompt, gen, settings.capture, notice=notice):
        frames.append(frame)
        if not frame.is_prompt:
            generated += 1
            _generating(generated, gen.max_tokens)
    if sys.stderr.isatty():
        print(file=sys.stderr)  # end the updating line
    meta = {
        "model": lm.name,
        "prompt": prompt,
        "n_prompt": sum(f.is_prompt for f in frames),
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
        "text": "".join(f.text for f in frames),
        "neuroweb_version": __version__,
    }
    return frames, meta
