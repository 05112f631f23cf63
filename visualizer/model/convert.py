"""Dequantize a GGUF file once into a folder that loads fast: safetensors + config + tokenizer.

transformers refuses `save_pretrained` on a GGUF-loaded model, so the state dict is written with
safetensors directly, each tied weight once under its source's name (see `_stored_state`). This
runs as a child process (`python -m visualizer.model.convert GGUF OUT`) so a caller can stop it
at once and its peak memory is returned to the system when it ends.
Progress goes to stdout as `step <k> <n> <what>` lines: step k of its n steps has begun.
"""

import sys
from pathlib import Path

STEPS = 4


def _say(step: int, what: str) -> None:
    print(f"step {step} {STEPS} {what}", flush=True)


def convert(gguf: Path, out: Path) -> None:
    """Write `out/` (config.json, model.safetensors, tokenizer files) from one GGUF file."""
    _say(1, "importing torch and transformers")
    import torch
    import transformers
    from safetensors.torch import save_file

    transformers.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    _say(2, "reading the tokenizer from the GGUF")
    tokenizer = transformers.AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    _say(3, "dequantizing the weights")
    model = transformers.AutoModelForCausalLM.from_pretrained(
        gguf.parent, gguf_file=gguf.name, dtype=torch.float32
    )
    _say(4, "writing the cache")
    out.mkdir(parents=True, exist_ok=True)
    save_file(_stored_state(model), str(out / "model.safetensors"), metadata={"format": "pt"})
    model.config.save_pretrained(out)
    model.generation_config.save_pretrained(out)
    tokenizer.save_pretrained(out)


def _stored_state(model) -> dict:
    """The weights to write: a tied target (lm_head of a model with tied embeddings) is left
    out, so its source (embed_tokens) is what the file holds. Why: safetensors' `save_model`
    kept lm_head instead, and every load then filled the "missing" embed_tokens with random
    numbers before tying it over them: 0.17 s of each start for SmolLM2 (0.50 s against
    0.66-0.80 s for `load_model`). Any other tensor sharing storage is written as a copy:
    the file cannot share, and a dropped name would load as random numbers."""
    state = model.state_dict()
    for target, source in model.all_tied_weights_keys.items():
        if target in state and source in state and (
            state[target].data_ptr() == state[source].data_ptr()
        ):
            del state[target]
    stored, seen = {}, set()
    for name, tensor in state.items():
        shared = tensor.data_ptr() in seen
        seen.add(tensor.data_ptr())
        stored[name] = tensor.clone() if shared else tensor.contiguous()
    return stored


if __name__ == "__main__":
    convert(Path(sys.argv[1]), Path(sys.argv[2]))
