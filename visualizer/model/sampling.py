"""Choosing the next token, and the summary of the distribution that each frame carries."""

import torch
from transformers import (
    LogitsProcessorList,
    TemperatureLogitsWarper,
    TopKLogitsWarper,
    TopPLogitsWarper,
)

from visualizer.config import GenerationSettings


class Sampler:
    """Temperature / top-k / top-p sampling from a seeded generator; temperature 0 is greedy."""

    def __init__(self, settings: GenerationSettings) -> None:
        self.greedy = settings.temperature == 0
        warpers = []
        if not self.greedy:
            warpers.append(TemperatureLogitsWarper(settings.temperature))
            if settings.top_k > 0:
                warpers.append(TopKLogitsWarper(settings.top_k))
            if settings.top_p < 1.0:
                warpers.append(TopPLogitsWarper(settings.top_p))
        self.warpers = LogitsProcessorList(warpers)
        self.settings = settings
        self.generator = torch.Generator().manual_seed(settings.seed)

    def fork(self) -> "Sampler":
        """A sampler that goes on exactly as this one would (the ghost's, split off mid-run)."""
        twin = Sampler(self.settings)
        twin.generator.set_state(self.generator.get_state())
        return twin

    def __call__(self, input_ids: torch.Tensor, logits: torch.Tensor) -> int:
        """Next token id from the last position's logits [V], given the ids so far [1, T]."""
        if self.greedy:
            return int(logits.argmax())
        scores = self.warpers(input_ids, logits[None].float())  # [1, V]
        probs = torch.softmax(scores, dim=-1)
        return int(torch.multinomial(probs, 1, generator=self.generator))


def summarize(logits: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Top-k ids and probabilities [S, k] and entropy [S] of softmax(logits [S, V]) at T=1."""
    logp = torch.log_softmax(logits.float(), dim=-1)  # [S, V]
    probs = logp.exp()
    entropy = -(probs * logp).sum(dim=-1)  # [S]
    top = probs.topk(k, dim=-1)
    return top.indices, top.values, entropy
