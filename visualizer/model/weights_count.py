"""The loading bar's count of the weights: transformers' own "Loading weights" loop, counted as
it goes (a measured share of the loading, not a guess of time), for model/load.py's stages."""

from collections.abc import Callable
from contextlib import contextmanager


class _Counted:
    """transformers' bar over the weights it loads, counting them for `report` as it goes (at
    most once a hundredth); every other use is the bar's own."""

    def __init__(self, bar, total: int, report: Callable[[int, int], None]) -> None:
        self.bar, self.total, self.report = bar, total, report

    def __iter__(self):
        step = max(1, self.total // 100)
        for done, item in enumerate(self.bar, 1):
            yield item
            if done % step == 0 or done == self.total:
                self.report(done, self.total)

    def __getattr__(self, name: str):
        return getattr(self.bar, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        return None


@contextmanager
def counting_weights(report: Callable[[int, int], None]):
    """While inside, the tensors transformers loads are counted: report(done, total) as its
    "Loading weights" loop goes (a measured share of the loading, not a guess of time)."""
    from transformers.utils import logging as hf_logging

    def hook(factory, args, kwargs):
        bar = factory(*args, **kwargs)
        items = args[0] if args else kwargs.get("iterable")
        if kwargs.get("desc") != "Loading weights" or not hasattr(items, "__len__"):
            return bar
        return _Counted(bar, len(items), report) if len(items) else bar

    previous = hf_logging.set_tqdm_hook(hook)
    try:
        yield
    finally:
        hf_logging.set_tqdm_hook(previous)
