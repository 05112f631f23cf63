"""Text in and out: the prompt through the chat template, and tokens back to text pieces."""

from visualizer.errors import UserError


def encode_prompt(tokenizer, prompt: str, raw: bool) -> list[int]:
    """Token ids for `prompt`, wrapped in the tokenizer's chat template unless `raw`."""
    if not prompt.strip():
        raise UserError("--prompt: the prompt is empty")
    if raw or not getattr(tokenizer, "chat_template", None):
        ids = tokenizer(prompt, add_special_tokens=True)["input_ids"]
    else:
        messages = [{"role": "user", "content": prompt}]
        ids = tokenizer.apply_chat_template(messages, add_generation_prompt=True)
        ids = ids["input_ids"] if hasattr(ids, "keys") else ids
    if not ids:
        raise UserError("--prompt: the prompt gives no tokens")
    return list(ids)


class Detokenizer:
    """Turns a growing token sequence into text pieces whose concatenation is the decoded text.

    Byte-level tokenizers split characters (emoji) across tokens, and decoding a lone token can
    give a replacement character; so each piece is the difference of decoding a short window
    with and without the new token, held back while it ends mid-character.
    """

    WINDOW = 6

    def __init__(self, tokenizer) -> None:
        self._tok = tokenizer
        self._ids: list[int] = []
        self._emitted = 0  # index into _ids up to which text has been emitted

    def fork(self) -> "Detokenizer":
        """One that goes on from this one's state, sharing its tokenizer."""
        twin = Detokenizer(self._tok)
        twin._ids, twin._emitted = list(self._ids), self._emitted
        return twin

    def piece(self, token_id: int) -> str:
        """One token decoded alone, as a candidate label (a partial character shows as �)."""
        return self._tok.decode([token_id])

    def push(self, token_id: int) -> str:
        self._ids.append(token_id)
        start = max(0, self._emitted - self.WINDOW)
        before = self._tok.decode(self._ids[start : self._emitted])
        after = self._tok.decode(self._ids[start:])
        if after.endswith("\ufffd") and len(self._ids) - self._emitted < 4:
            return ""  # an incomplete UTF-8 character: wait for its remaining bytes
        self._emitted = len(self._ids)
        return after[len(before) :]
