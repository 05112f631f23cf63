"""`neuroweb bench`: speed and memory of the model stream, measured in one run, as JSON.

Figures (tok/s are decode rates after the prompt, greedy, the embedded SmolLM2):
  bare_tok_s           sdpa, no capture, this process's main thread, and
  capture_tok_s        full capture in the model process, a consumer draining the handoff,
                       the process's second answer (its first, WARM_TOKENS long, pays the
                       once-per-process setup): each the median of PAIRED_RUNS runs, taken
                       in turn (the shared machine's speed drifts by 2x); their runs in *_runs
  capture_ratio        capture_tok_s / bare_tok_s
  capture_plain_tok_s  the capture without the logit lens (capture.lens_every = 0), and
  lens_ratio           capture_tok_s (the default lens: every 4th layer and the last) over it
  lens_ms              the default lens's milliseconds per generated token, in-process: what
                       its rows add to the unembedding's product, and their top words
  unembed_ms_stock / unembed_ms   the model's own unembedding of a token, in-process: as
                       transformers runs it, and as the capture's hooks do (model/unembed.py)
  lens_share_of_bare_token   that over a bare token's time: steadier than lens_ratio
  ghost_ratio          with an ablation and its ghost (a batch of two, no lens), over it
  capture_tok_s_busy_consumer         the same while the consumer runs Python for half of
                                      every 60 Hz frame (a render loop's shape)
  thread_capture_tok_s_busy_consumer  the same capture as a thread of the consumer's process:
                                      the design the stream process replaces (GIL contention)
  load_s_cold / load_s_warm   load_model() in a fresh process, empty / warm cache
  first_token_s_cold / _warm   fresh process, empty / warm cache: interpreter start to the
                       first generated token arriving from a model process it starts
  first_token_on_screen_s_warm   fresh `neuroweb run --prompt`-like process (offscreen,
                       drawing as a window does: model process first, window clock and frame
                       caps, no waiting on the model): to the answer's first word drawn
  first_token_s_served the same with `--source`, a `neuroweb serve` already up (kept warm)
  peak_rss_mb          the model process's peak resident memory while streaming
  first_frame_s        fresh process: interpreter start to the first complete frame of the live
                       demo (offscreen through EGL; the model process starts loading beside it)
  render_fps_720p / _1080p   the live demo offscreen with RealClock, default preset, the model
                       streaming from its process (all cores but one), the governor on: median
                       frames per second over RENDER_S seconds, with frame_ms_median/p99 and
                       the render scale and detail the governor settled at
  passes_ms_720p / _1080p   then, over PASS_FRAMES more frames with the HUD on, each pass's
                       median time as the HUD measures it (render/passes.py), and
  panel_draws_720p / _1080p  the draw calls of the text and panels in a frame
  render_fps_720p_glitch, frame_ms_p99_720p_glitch, passes_ms_720p_glitch   the same in
                       the glitch look (cuts, stutters, word flashes, colour splits), and
  held_back_share_720p_glitch   the share of its frames the flash limiter held back (each
                       one a mix in linear light: the costliest frames of that look)
  idle_cpu_cores       the live demo offscreen at 720p before its first prompt, at rest
                       (render/rest.py): CPU of its process and its model process, in cores,
                       over IDLE_S seconds, and idle_fps, the frames it drew a second
  capture_tok_s_while_rendering   the model's decode rate during the 720p measurement, and
  capture_ratio_while_rendering   its ratio to bare_tok_s
  bare_tok_s_spare_threads        bare decode with all cores but one (what the model process
                                  gets while a window renders)
  offline_render_fps_720p30 / _1080p60   `neuroweb render` of a SmolLM2 trace at 4 tokens
                       a second (no model running): video frames written per second of wall
                       time, encode and the soundtrack included, in as many processes as it
                       chooses, and
  offline_render_fps_720p30_one_process   the same drawn by one process
  synth_cpu_share      CPU seconds the synthesiser needs per second of sound (the live window
                       pays this on its render thread)
  remote_tok_s         decode rate of frames arriving from `neuroweb serve` over loopback (the
                       server a fresh process on this machine, reduced detail), and
  remote_local_tok_s   a local model process at the same detail, measured beside it;
  remote_ratio         their ratio
  viewer_costs         `serve` watched by 0, 1, 2, 4 and 8 viewers beside the asker on loopback,
                       at the reduced detail: the server's network side (its network thread
                       and ZeroMQ's threads) in CPU ms a generated token, the extra per viewer,
                       and the bytes a frame sent to each client
  bytes_per_token      what one generated token's frame costs on the wire, per detail level:
                       measured on SmolLM2 (the mean over an answer), and computed for a
                       Llama-3-70B config (80 blocks, width 8192, 64 heads, d_ff 28672) deep
                       into a long context
  stream_latency_ms_median / _max   `run --stream`'s picture on loopback: from a frame handed
                       to the stream to it decoded by the bundled ffmpeg reading with its
                       buffering off (a player's own buffer and the screen come on top), at
                       720p30; _seen of _sent: the marked frames that came back
  reconnect_s          the server killed and started again: from it being ready again to the
                       first frame arriving at the client that was waiting

Where each is measured: decode.py (the decode rates, the unembedding's and the lens's ms),
startup.py (the fresh-process figures), render.py (live and offline drawing, the synthesiser),
remote.py (the server over loopback, bytes per token), stream.py (a live stream's latency).
This module runs them in turn and prints the JSON report.
"""

import json
import os
import sys
import tempfile
from functools import partial

from visualizer.bench.decode import bare_tok_s, stream_tok_s, thread_tok_s, unembedding_ms
from visualizer.bench.remote import bytes_per_token, remote_figures, viewer_costs
from visualizer.bench.render import (
    idle_cpu,
    offline_fps,
    render_fps,
    synth_cpu_share,
    trace_frames,
)
from visualizer.bench.startup import probe
from visualizer.bench.stream import stream_latency
from visualizer.config import load_settings

PAIRED_RUNS = 5  # bare decode and the capture, measured in turn


def _say(quiet: bool, text: str) -> None:
    if not quiet:
        print(f"bench: {text}", file=sys.stderr, flush=True)


def bench_command(tokens: int = 64, skip_cold: bool = False, quiet: bool = False) -> int:
    """Every figure of the top, measured in turn; the JSON report on stdout (indented unless
    `quiet`, which also leaves out the progress on stderr)."""
    import numpy as np
    import torch

    from visualizer.model.load import load_model

    say = partial(_say, quiet)
    cores = os.cpu_count() or 1
    out: dict = {"cores": cores, "tokens": tokens, "torch_threads": torch.get_num_threads()}
    if not skip_cold:
        say("cold load (empty cache, fresh process)")
        with tempfile.TemporaryDirectory() as empty:
            out["load_s_cold"] = probe("load", empty)["load_s"]
        with tempfile.TemporaryDirectory() as empty:
            out["first_token_s_cold"] = probe("first-token", empty)["first_token_s"]
    say("warm load and first token (fresh processes)")
    out["load_s_warm"] = probe("load")["load_s"]
    out["first_token_s_warm"] = probe("first-token")["first_token_s"]
    live = probe("first-frame")
    out["first_frame_s"] = live["first_frame_s"]
    out["first_token_on_screen_s_warm"] = live["first_token_on_screen_s"]

    lm = load_model("")
    gen = {"temperature": 0.0, "max_tokens": tokens}
    settings = load_settings(None, {"generation": gen})
    bare_runs, capture_runs, peaks = [], [], []
    for run in range(PAIRED_RUNS):  # side by side, so a drift of the machine hits both
        say(f"bare decode and the capture in the model process ({run + 1}/{PAIRED_RUNS})")
        bare_runs.append(bare_tok_s(lm, tokens))
        rate, peak = stream_tok_s(settings, busy=False)
        capture_runs.append(rate)
        peaks.append(peak)
    out["bare_tok_s"] = float(np.median(bare_runs))
    out["capture_tok_s"] = float(np.median(capture_runs))
    out["capture_ratio"] = out["capture_tok_s"] / out["bare_tok_s"]
    out["bare_tok_s_runs"] = [round(r, 2) for r in bare_runs]
    out["capture_tok_s_runs"] = [round(r, 2) for r in capture_runs]
    out["peak_rss_mb"] = max(peaks)
    say("the capture without the lens, and with an ablation's ghost")
    plain = {"generation": gen, "capture": {"lens_every": 0}}
    out["capture_plain_tok_s"], _ = stream_tok_s(load_settings(None, plain), busy=False)
    ghost = {**plain, "intervene": {"ablate": ["mlp:10"]}}
    out["ghost_tok_s"], _ = stream_tok_s(load_settings(None, ghost), busy=False)
    out["lens_ratio"] = out["capture_tok_s"] / out["capture_plain_tok_s"]
    out.update(unembedding_ms(lm))
    out["lens_share_of_bare_token"] = out["lens_ms"] * out["bare_tok_s"] / 1000
    out["ghost_ratio"] = out["ghost_tok_s"] / out["capture_plain_tok_s"]

    spare = max(1, cores - 1)  # leave a core to the consumer, as the window does
    busy = load_settings(None, {"generation": gen, "model": {"threads": spare}})
    say(f"busy consumer: model process ({spare} torch threads)")
    out["capture_tok_s_busy_consumer"], _ = stream_tok_s(busy, busy=True)
    say(f"busy consumer: in-process thread ({spare} torch threads)")
    default_threads = torch.get_num_threads()
    torch.set_num_threads(spare)
    out["thread_capture_tok_s_busy_consumer"] = thread_tok_s(lm, busy.generation, busy=True)
    out["bare_tok_s_spare_threads"] = bare_tok_s(lm, tokens)  # the window's model thread count
    torch.set_num_threads(default_threads)

    say("offline renders of a trace, and the soundtrack's synthesiser")
    frames = trace_frames(lm)
    out["offline_render_fps_720p30"] = offline_fps(frames, lm.name, (1280, 720), 30)
    out["offline_render_fps_720p30_one_process"] = offline_fps(frames, lm.name, (1280, 720), 30,
                                                               processes=1)  # fmt: skip
    out["offline_render_fps_1080p60"] = offline_fps(frames, lm.name, (1920, 1080), 60)
    out["synth_cpu_share"] = synth_cpu_share(frames)
    say("a model server over loopback, and bytes per token")
    out.update(remote_figures(tokens))
    out.update(viewer_costs(tokens))
    out.update(bytes_per_token(lm))
    say("a live stream's latency on loopback")
    out.update(stream_latency())
    for name, size in (("720p", (1280, 720)), ("1080p", (1920, 1080))):
        say(f"rendering at {name} with the model streaming")
        r = render_fps(size, say)
        out[f"render_fps_{name}"] = r["fps"]
        out[f"frame_ms_median_{name}"] = r["frame_ms_median"]
        out[f"frame_ms_p99_{name}"] = r["frame_ms_p99"]
        out[f"render_scale_{name}"] = r["render_scale"]
        out[f"detail_{name}"] = r["detail"]
        out[f"passes_ms_{name}"] = r["passes_ms"]
        out[f"panel_draws_{name}"] = r["panel_draws"]
        if name == "720p":
            out["capture_tok_s_while_rendering"] = r["tok_s"]
            out["capture_ratio_while_rendering"] = r["tok_s"] / out["bare_tok_s"]
    say("the window at rest before its first prompt")
    out.update(idle_cpu())
    say("rendering at 720p in the glitch look with the model streaming")
    r = render_fps((1280, 720), say, "glitch")
    out["render_fps_720p_glitch"] = r["fps"]
    out["frame_ms_p99_720p_glitch"] = r["frame_ms_p99"]
    out["held_back_share_720p_glitch"] = r["held_back_share"]
    out["passes_ms_720p_glitch"] = r["passes_ms"]

    out = {k: round(v, 3) if isinstance(v, float) else v for k, v in out.items()}
    print(json.dumps(out, indent=None if quiet else 2))
    return 0
