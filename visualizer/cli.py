"""Command line: parse arguments, layer them over the preset, run the chosen command. Bad input
ends with one line on stderr naming the argument, file or key, and exit status 2."""

import argparse
import faulthandler
import os
import sys
from collections.abc import Callable
from pathlib import Path

from visualizer import heap, run_flags, signals
from visualizer.config import SCENES, PresetWatch, Settings, load_settings
from visualizer.detail import LEVELS
from visualizer.errors import Unreachable, UserError
from visualizer.film.command import add_film
from visualizer.film.command import film as _film
from visualizer.interventions import interventions_from
from visualizer.logs import log_to_stderr
from visualizer.network import DEFAULT_LISTEN
from visualizer.paths import check_output_path
from visualizer.record.recover import mention_leftovers
from visualizer.render.calibrate import add_calibrate
from visualizer.render.calibrate import calibrate as _calibrate
from visualizer.signals import stop_like_ctrl_c


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, not the usage block
        command = self.prog.partition(" ")[2]  # "trace" in "neuroweb trace"
        raise UserError(f"{command}: {message}" if command else message)


def _number(kind: type, lo: float, hi: float, expected: str) -> Callable[[str], float]:
    """A flag's type: a `kind` from `lo` to `hi` (a float above `lo`), or the one line saying
    what was `expected`."""

    def number(text: str) -> float:
        try:
            value = kind(text)
        except ValueError:
            value = None
        if value is None or not (lo < value if kind is float else lo <= value) or value > hi:
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
        return value

    return number


_positive = _number(int, 1, float("inf"), "a whole number ≥ 1")
_count = _number(int, 0, 64, "a whole number in 0..64")  # 0: chosen for this machine
_rate = _number(float, 0, 1000, "a number in (0, 1000]")


def _size(text: str) -> tuple[int, int]:
    width, _, height = text.lower().partition("x")
    try:
        size = (int(width), int(height))
    except ValueError:
        size = (0, 0)
    if not all(16 <= v <= 16384 for v in size):
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT, each 16..16384, got {text!r}")
    return size


def _add_source(p: argparse.ArgumentParser, prompt_help: str) -> None:
    """--prompt or --trace: what `render` and `snapshot` draw (see `_answer`)."""
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--prompt", help=prompt_help)
    source.add_argument("--trace", type=Path, help="an .npz from neuroweb trace (no model)")


def _add_scene_flag(p: argparse.ArgumentParser, default: str | None = None) -> None:
    which = default or "the preset's"
    p.add_argument("--scene", choices=SCENES, default=default,
                   help=f"web (the neural web) or architecture (default: {which})")  # fmt: skip


def _add_source_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--source", metavar="HOST:PORT",
                   help="take frames from `neuroweb serve` there instead of a local model")
    p.add_argument("--token-file", help="the server's shared token, in this file")
    p.add_argument("--keys", dest="key_dir", metavar="DIR",
                   help="CURVE keys for a server beyond loopback: server.key, client.key_secret")
    p.add_argument("--detail", choices=LEVELS,
                   help="what each frame carries (default: full locally, reduced remotely)")


def _add_answer_flags(p: argparse.ArgumentParser) -> None:
    """Where the model runs, which, how it samples and what is changed in it."""
    _add_source_flags(p)
    p.add_argument("--model", help="a model folder, .gguf file, or local HF cache name")
    p.add_argument("--trust-pickle", action="store_true", default=None,
                   help="allow .bin/.pt weights (pickle can run code)")  # fmt: skip
    p.add_argument("--preset", default="default", help="preset name in configs/ or a .toml path")
    p.add_argument("--threads", type=int, help="torch threads for the model (0 = all cores)")
    _add_sampling_flags(p)
    _add_intervention_flags(p)


def _add_intervention_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--ablate", action="append", metavar="KIND:BLOCK[.HEAD]",
                   help="zero a part from the first token: mlp:10, attn:3, head:3.7 (repeat)")
    p.add_argument("--steer", action="append", metavar="BLOCK:SCALE:PLUS|MINUS",
                   help="add SCALE × (mean residual after BLOCK on PLUS − on MINUS) there")
    p.add_argument("--no-ghost", action="store_false", dest="ghost", default=None,
                   help="do not run the untouched answer beside a changed one")  # fmt: skip


def _add_sampling_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--tokens", type=int, help="tokens to generate")
    p.add_argument("--temperature", type=float, help="0 = greedy")
    p.add_argument("--top-k", type=int)
    p.add_argument("--top-p", type=float)
    p.add_argument("--seed", type=int)
    p.add_argument("--context", type=int, help="tokens kept in view")
    p.add_argument("--raw", action="store_true", default=None, help="skip the chat template")


def _command(sub: argparse._SubParsersAction, name: str, run: Callable[..., int], about: str,
             *, like_ctrl_c: bool = False, info: tuple[str, ...] = ()) -> argparse.ArgumentParser:
    """The sub-command `name`, run by `run(args)`. `like_ctrl_c`: SIGTERM and SIGHUP end it as
    Ctrl-C does (its file finished and kept); `info`: loggers whose INFO records stderr shows."""
    command = sub.add_parser(name, help=about)
    command.set_defaults(func=run, like_ctrl_c=like_ctrl_c, info=info)
    return command


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="neuroweb", description=__doc__.partition(". ")[0])
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    run = _command(sub, "run", _run, "the live window (a headless clip when there is no display)",
                   like_ctrl_c=True, info=("neuroweb.show",))  # fmt: skip
    run.add_argument("--prompt", help="start generating this at once")
    run.add_argument("--record", type=Path, help="record the window to this .mp4 from the start")
    run.add_argument("--headless", action="store_true",
                     help="render offscreen (EGL), no window: with --frames, --size, --record")
    run.add_argument("--frames", type=_positive, help="headless: frames to render")
    run.add_argument("--size", type=_size, help="headless: WIDTHxHEIGHT (default: the preset's)")
    run.add_argument("--screenshot", type=Path, help="headless: save the last frame as a PNG")
    run.add_argument("--terminal", action="store_true",
                     help="no graphics: stream answers as text (prompts from stdin)")
    run_flags.add_show_flags(run)
    run_flags.add_picture_flags(run)
    _add_scene_flag(run)
    _add_answer_flags(run)

    trace = _command(sub, "trace", _trace, "record every position of one run to an .npz",
                     like_ctrl_c=True)  # fmt: skip
    trace.add_argument("--prompt", required=True)
    trace.add_argument("--out", required=True, type=Path)
    trace.add_argument("--attention-window", type=_positive,
                       help="positions of attention kept per token, the newest (default 64)")
    trace.add_argument("--engine", choices=("hooks", "nnsight"), default="hooks",
                       help="neuroweb's own hooks (default), or nnsight (pip install "
                       "'neuroweb[nnsight]')")  # fmt: skip
    trace.add_argument("--remote", nargs="?", const="ndif", choices=("ndif", "local"),
                       help="with --engine nnsight: run on NDIF (or 'local': a dry run of "
                       "that request, here)")  # fmt: skip
    _add_answer_flags(trace)

    render = _command(sub, "render", _render, "render a prompt or a saved trace to a video, "
                      "offline", like_ctrl_c=True)  # fmt: skip
    _add_source(render, "run the model on this and render its answer")
    run_flags.add_output_flags(render)
    render.add_argument("--size", type=_size, default=(1920, 1080), help="WIDTHxHEIGHT")
    render.add_argument("--fps", type=_number(int, 1, 240, "a whole number in 1..240"), default=60,
                        help="video frames per second")  # fmt: skip
    render.add_argument("--token-rate", type=_rate, default=8.0, help="tokens per video second")
    render.add_argument("--no-audio", action="store_true", help="no soundtrack")
    render.add_argument("--processes", type=_count, default=0,
                        help="processes that draw it, each a part (default 0: one per core, "
                        "at most 2, each part at least 5 s)")  # fmt: skip
    _add_scene_flag(render)
    _add_answer_flags(render)

    snap = _command(sub, "snapshot", _snapshot, "a poster of one answer: the architecture, "
                    "live, as PNG", like_ctrl_c=True)  # fmt: skip
    _add_source(snap, "run the model on this and draw its last token")
    snap.add_argument("--out", required=True, type=Path, help="the .png to write")
    snap.add_argument("--size", type=_size, help="WIDTHxHEIGHT (default: the preset's poster)")
    _add_scene_flag(snap, default="architecture")
    _add_answer_flags(snap)

    recover = _command(sub, "recover", _recover, "make recordings cut short by a crash playable")
    recover.add_argument("folder", nargs="?", type=Path, default=Path("."), help="default: here")

    inspect = _command(sub, "inspect", _inspect, "print what the model is made of (no rendering)")
    inspect.add_argument("--model", default="", help="a model folder, .gguf or HF cache name")
    inspect.add_argument("--trust-pickle", action="store_true", help="allow .bin/.pt weights")
    inspect.add_argument("--json", action="store_true", help="JSON, each fact with its source")

    kiosk = _command(sub, "kiosk", _kiosk, "an installation: fullscreen, unattended, "
                     "self-healing", like_ctrl_c=True)  # fmt: skip
    kiosk.add_argument("--config", default="kiosk", help="preset name in configs/ or a .toml")
    _add_source_flags(kiosk)

    serve = _command(sub, "serve", _serve, "run the model as a server for windows elsewhere",
                     info=("neuroweb.serve",))  # fmt: skip
    serve.add_argument("--model", help="a model folder, .gguf file, or local HF cache name")
    serve.add_argument("--listen", default=DEFAULT_LISTEN, metavar="HOST:PORT",
                       help=f"where to listen (default {DEFAULT_LISTEN}, this machine only)")
    serve.add_argument("--device-map", choices=("auto",), help="spread the model over GPUs")
    serve.add_argument("--dtype", choices=("float32", "bfloat16", "float16"), default="float32")
    serve.add_argument("--token-file", help="a shared secret clients must give as well")
    serve.add_argument("--keys", metavar="DIR", help="CURVE keys (made there if absent), needed "
                       "to listen beyond loopback: encrypted, and only the clients in DIR/clients")
    serve.add_argument("--trust-pickle", action="store_true", default=None,
                       help="allow .bin/.pt weights (pickle can run code)")
    serve.add_argument("--threads", type=int, help="torch threads (0 = all cores)")
    serve.add_argument("--preset", default="default", help="preset name or .toml path")
    _add_intervention_flags(serve)

    soak = _command(sub, "soak", _soak, "run the kiosk headless, time compressed; print JSON")
    soak.add_argument("--minutes", type=_rate, required=True, help="how long to run")
    soak.add_argument("--inject-faults", action="store_true",
                      help="a model exception, a killed ffmpeg, a corrupted preset, in turn")
    soak.add_argument("--fault-every", type=_rate, default=20.0, help="seconds between faults")
    soak.add_argument("--model", default="", help="a model folder, .gguf or HF cache name")
    soak.add_argument("--served", action="store_true",
                      help="the model in a `neuroweb serve` child process, the kiosk its client")

    add_film(sub, _command, _film, _add_answer_flags, _size, settings_from)
    add_calibrate(sub, _command, _calibrate, _size)
    bench = _command(sub, "bench", _bench, "measure speed and memory, print JSON")
    bench.add_argument("--json", action="store_true", help="print only the JSON object")
    bench.add_argument("--tokens", type=int, default=64, help="tokens per measurement")
    bench.add_argument("--skip-cold", action="store_true", help="skip the cold-load measurement")
    return parser


def settings_from(args: argparse.Namespace) -> Settings:
    """Preset, then the flags that were given."""
    return load_settings(args.preset, overrides_from(args))


def overrides_from(args: argparse.Namespace) -> dict:
    """The flags that were given (None = not given), as preset sections."""
    flags = {
        "model": {key: getattr(args, key, None) for key in (
            "trust_pickle", "threads", "source", "token_file", "key_dir", "detail", "watch")},
        "generation": {key: getattr(args, flag, None) for key, flag in (
            ("max_tokens", "tokens"), ("temperature", "temperature"), ("top_k", "top_k"),
            ("top_p", "top_p"), ("seed", "seed"), ("context", "context"), ("raw", "raw"))},
    }
    for section, key, flag in (("model", "name", "model"), ("look", "scene", "scene"),
                               ("sound", "device", "audio_device"), ("record", "stream", "stream"),
                               ("capture", "trace_window", "attention_window"),
                               ("window", "display", "display"), ("window", "operator", "operator"),
                               ):
        flags.setdefault(section, {})[key] = getattr(args, flag, None)
    interventions_from(tuple(getattr(args, "ablate", None) or ()),
                       tuple(getattr(args, "steer", None) or ()))  # a bad one: named as given
    flags["intervene"] = {key: getattr(args, key, None) for key in ("ablate", "steer", "ghost")}
    return {
        section: {k: v for k, v in values.items() if v is not None}
        for section, values in flags.items()
    }


def _run(args: argparse.Namespace) -> int:
    cues, settings = run_flags.checked(args), settings_from(args)  # the flags' own lines first
    chrome = run_flags.chrome_shown(args, not args.headless, settings.window.operator)
    if args.terminal:
        from visualizer.terminal import run_terminal

        return run_terminal(settings, args.prompt)
    mention_leftovers(Path.cwd(), *([args.record.parent] if args.record else []))
    watch = None if args.headless else PresetWatch(args.preset, overrides_from(args))
    from visualizer.sources import model_first

    with model_first(settings) as source:  # before the render stack's imports (0.2-0.3 s)
        from visualizer import live

        if args.headless:
            size = args.size or (settings.window.width, settings.window.height)
            frames = args.frames or settings.record.demo_frames
            return live.run_headless(settings, source, args.prompt, frames, size, args.record,
                                     args.screenshot, chrome)  # fmt: skip
        return live.run_live(settings, source, args.prompt, args.record, watch, cues, args.osc,
                             chrome)  # fmt: skip


def _answer(args: argparse.Namespace, settings: Settings):
    """The run to draw: a saved trace (--trace), or the model answering --prompt now."""
    from visualizer.render.offline import Run
    from visualizer.trace import frames_from_trace, read_trace
    from visualizer.tracer import run_model

    if args.trace is None:
        builder, meta = run_model(settings, args.prompt)
        return Run.from_meta(builder.frames, meta)
    trace = read_trace(args.trace)
    run = Run.from_meta(frames_from_trace(trace), trace.meta)
    if run.architecture is None and settings.look.scene == "architecture":
        raise UserError(f"{args.trace}: the trace does not record the model's config, which "
                        "the architecture scene is drawn from")  # fmt: skip
    return run


def _render(args: argparse.Namespace) -> int:
    from visualizer.render.offline import paced, render_video

    settings = settings_from(args)
    out, alpha = run_flags.render_output(args)  # checked before minutes of model work
    mention_leftovers(out.parent)
    run = _answer(args, settings)
    timeline = paced(run.frames, args.fps, args.token_rate)
    saved = render_video(run, settings, out, args.size, args.fps, timeline,
                         sound=not args.no_audio, processes=args.processes, alpha=alpha,
                         chrome=args.chrome)  # fmt: skip
    print(f"neuroweb: saved {saved}", file=sys.stderr)
    return 0


def _snapshot(args: argparse.Namespace) -> int:
    from visualizer.render.offline import snapshot

    settings = settings_from(args)
    out = args.out
    if out.suffix.lower() != ".png":
        raise UserError(f"snapshot: --out {out}: expected a .png file name")
    check_output_path(out)  # before the model's work
    run = _answer(args, settings)
    size = args.size or (settings.record.poster_width, settings.record.poster_height)
    try:
        saved = snapshot(run, settings, out, size)
    except OSError as exc:
        raise UserError(f"snapshot: --out {out}: cannot write: {exc.strerror}") from None
    print(f"neuroweb: saved {saved}", file=sys.stderr)
    return 0


def _trace(args: argparse.Namespace) -> int:
    from visualizer.tracer import trace_command

    if args.remote and args.engine != "nnsight":
        raise UserError("trace: --remote needs --engine nnsight")
    return trace_command(settings_from(args), args.prompt, args.out, (args.engine, args.remote))


def _kiosk(args: argparse.Namespace) -> int:
    from visualizer.kiosk import run_kiosk

    mention_leftovers(Path.cwd())
    return run_kiosk(load_settings(args.config, overrides_from(args)))


def _serve(args: argparse.Namespace) -> int:
    from visualizer.server import serve_command

    return serve_command(settings_from(args), args.listen, args.device_map, args.dtype,
                         args.token_file, args.keys)  # fmt: skip


def _soak(args: argparse.Namespace) -> int:
    from visualizer.soak import soak_command

    return soak_command(args.minutes, args.inject_faults, args.model, args.fault_every,
                        args.served)  # fmt: skip


def _recover(args: argparse.Namespace) -> int:
    from visualizer.record.recover import recover_command
    return recover_command(args.folder)


def _inspect(args: argparse.Namespace) -> int:
    from visualizer.report import inspect_command
    return inspect_command(args.model, args.trust_pickle, args.json)


def _bench(args: argparse.Namespace) -> int:
    from visualizer.bench import bench_command

    return bench_command(tokens=args.tokens, skip_cold=args.skip_cold, quiet=args.json)


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
    if not faulthandler.is_enabled():  # a crash in native code (GL, SDL) says where it was
        faulthandler.enable()
    heap.steady()  # a window, kiosk or server runs for days: its heap must not fragment
    try:
        args = build_parser().parse_args(argv)
        log_to_stderr(*args.info)
        if args.like_ctrl_c:
            stop_like_ctrl_c()
        return args.func(args)
    except (UserError, Unreachable) as exc:  # bad input: 2; a server that did not answer: 1
        clear = "\r\033[K" if sys.stderr.isatty() else ""  # over a progress line
        print(f"{clear}neuroweb: {exc}", file=sys.stderr)
        return 2 if isinstance(exc, UserError) else 1
    except KeyboardInterrupt as stop:
        kept = getattr(stop, "kept", None)
        said = f"; kept {kept}" if kept else ""
        print(f"\nneuroweb: stopped ({signals.name(stop)}){said}", file=sys.stderr)
        return signals.exit_status(stop)

