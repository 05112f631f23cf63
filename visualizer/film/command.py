"""`neuroweb film`: its flags, and the command: the runs (the model answering the prompts, or
saved traces), then the film (assembly.py). Imported by the command line at start, so nothing
heavy is imported here before the command runs."""

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

from visualizer.errors import UserError
from visualizer.paths import check_output_path

PROMPTS = (  # the film's own, when none are given
    "What is it like to be a language model?",
    "Describe the moment before you choose a word.",
    "Tell me a dream you had about the internet.",
)


def _bounded(kind: type, lo: float, hi: float) -> Callable[[str], float]:
    def value(text: str) -> float:
        try:
            number = kind(text)
        except ValueError:
            number = None
        if number is None or not lo <= number <= hi:
            raise argparse.ArgumentTypeError(f"expected a number in {lo:g}..{hi:g}, got {text!r}")
        return number

    return value


def add_film(sub, command: Callable, run: Callable, answer_flags: Callable, size: Callable,
             settings_from: Callable) -> None:  # fmt: skip
    """The `film` sub-command, run by `run` (`film`, by the command line's name for it), with
    the command line's own helpers: `command` makes it, `answer_flags` adds the model's flags,
    `size` reads WIDTHxHEIGHT, `settings_from` layers the flags over the preset."""
    p = command(sub, "film", run, "an edited film of several answers, cut by the model's "
                "own events, with its .otio edit list", like_ctrl_c=True)  # fmt: skip
    p.add_argument("--out", required=True, type=Path, help="the .mp4 to write (and .otio)")
    runs = p.add_mutually_exclusive_group()
    runs.add_argument("--prompt", action="append", help="a prompt (repeat; default: the film's)")
    runs.add_argument("--prompts", type=Path, help="a text file of prompts, one a line")
    runs.add_argument("--trace", action="append", type=Path, help="an .npz (repeat; no model)")
    p.add_argument("--length", type=_bounded(float, 5, 600), default=60.0, help="seconds")
    p.add_argument("--size", type=size, default=(1920, 1080), help="WIDTHxHEIGHT")
    p.add_argument("--fps", type=_bounded(int, 1, 120), default=30)
    p.add_argument("--bpm", type=_bounded(float, 40, 240), default=120.0, help="the beat grid")
    p.add_argument("--no-ablation", action="store_true",
                   help="no ablation interlude (its extra run of the first prompt)")
    p.add_argument("--no-flash-limit", action="store_true",
                   help="the limiter off: the film then opens with a warning it cannot lose")
    p.add_argument("--processes", type=_bounded(int, 0, 64), default=0,
                   help="processes that draw it (default 0: one per core, at most 2)")
    answer_flags(p)
    p.set_defaults(preset="glitch", settings_from=settings_from)


def film(args: argparse.Namespace) -> int:
    from visualizer.film.assembly import film_settings, make_film

    out = args.out
    if out.suffix.lower() != ".mp4":
        raise UserError(f"film: --out {out}: expected an .mp4 file name")
    check_output_path(out)  # before minutes of model work
    prompts = _prompts(args)
    settings = args.settings_from(args)
    if args.tokens is None and args.trace is None:  # enough for the length, not more
        gen = settings.generation
        settings = _with_tokens(settings, min(gen.max_tokens, max(16, round(1.2 * args.length))))
    footage = _footage(args, settings, prompts)
    made = make_film(footage, film_settings(settings, not args.no_flash_limit), out, args.size,
                     args.fps, args.length, args.bpm, settings.generation.seed,
                     args.processes)  # fmt: skip
    held = "off" if made.held < 0 else f"held back {made.held} frames"
    print(f"neuroweb: saved {made.out} and {made.timeline.name}: {made.seconds:.1f} s, "
          f"{made.cuts} cuts ({made.cuts_per_minute:.1f} a minute), {made.lufs:.1f} LUFS, "
          f"flash limiter {held}; drawn in {made.render_s:.0f} s "
          f"({made.frames / made.render_s:.1f} frames/s), {made.wall_s:.0f} s in all",
          file=sys.stderr)  # fmt: skip
    return 0


def _prompts(args: argparse.Namespace) -> tuple[str, ...]:
    if args.prompts is not None:
        try:
            lines = args.prompts.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise UserError(f"film: --prompts {args.prompts}: cannot read it ({exc})") from None
        found = tuple(line.strip() for line in lines if line.strip())
        if not found:
            raise UserError(f"film: --prompts {args.prompts}: no prompts in it")
        return found
    if args.prompt and not all(p.strip() for p in args.prompt):
        raise UserError("film: --prompt: a prompt cannot be blank")
    return tuple(args.prompt or PROMPTS)


def _with_tokens(settings, tokens: int):
    from msgspec import structs

    return structs.replace(settings, generation=structs.replace(settings.generation,
                                                                max_tokens=tokens))


def _footage(args: argparse.Namespace, settings, prompts: tuple[str, ...]):
    """The runs: the traces given, or the model answering each prompt (one model process),
    and then, for the ablation interlude, the first prompt again with the MLP of the middle
    block switched off (the untouched run beside it)."""
    from visualizer.film.assembly import Footage
    from visualizer.interventions import interventions_from
    from visualizer.render.offline import Run
    from visualizer.sources import open_source
    from visualizer.trace import frames_from_trace, read_trace
    from visualizer.tracer import answer

    if args.trace:
        runs, sources = [], []
        for path in args.trace:
            trace = read_trace(path)
            runs.append(Run.from_meta(frames_from_trace(trace), trace.meta))
            sources.append(str(path))
        ablated = next((i for i, r in enumerate(runs) if any(f.ghost for f in r.frames)), -1)
        return Footage(tuple(runs), tuple(sources), -1 if args.no_ablation else ablated)
    runs = []
    with open_source(settings, lossless=True) as source:
        for prompt in prompts:
            builder, meta = answer(source, settings, prompt)
            runs.append(Run.from_meta(builder.frames, meta))
        blocks = runs[0].architecture.blocks if runs[0].architecture else 0
        if not args.no_ablation and blocks:
            part = interventions_from((f"mlp:{blocks // 2}",), ())
            builder, meta = answer(source, settings, prompts[0], part)
            runs.append(Run.from_meta(builder.frames, meta))
    ablated = len(prompts) if len(runs) > len(prompts) else -1
    return Footage(tuple(runs), ("prompt",) * len(runs), ablated)
