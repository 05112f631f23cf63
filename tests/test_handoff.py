import threading
import time

import numpy as np
import pytest

from tests.synthetic import synthetic_frame
from visualizer.frame import Frame
from visualizer.handoff import Failure, Handoff, Status


def _frame(i: int) -> Frame:
    z = np.zeros((2, 3), np.float32)
    return synthetic_frame(i, np.zeros((2, 3)), z, np.zeros((1, 1, i + 1)))


def test_slow_consumer_gets_the_newest_frames_and_a_drop_count():
    h = Handoff(capacity=4)
    for i in range(10):
        h.publish(_frame(i))
    batch = h.drain()
    assert [f.index for f in batch.frames] == [6, 7, 8, 9]
    assert batch.dropped == 6
    assert h.drain().dropped == 0


@pytest.mark.alone
def test_drain_waits_only_up_to_its_timeout_and_wakes_on_news():
    h = Handoff()
    t = time.perf_counter()
    assert h.drain(timeout=0.05).frames == ()
    assert time.perf_counter() - t < 1.0
    threading.Timer(0.05, lambda: h.publish(_frame(0))).start()
    assert len(h.drain(timeout=5).frames) == 1


def test_status_and_failure_reach_the_consumer():
    h = Handoff()
    h.set_status(Status("loading", "x", 0.5))
    h.fail(Failure("boom", user_error=False))
    batch = h.drain()
    assert batch.status.progress == 0.5 and batch.failure.message == "boom"


def test_frames_are_immutable():
    f = _frame(0)
    assert not f.attn.flags.writeable
    import pickle

    assert not pickle.loads(pickle.dumps(f)).attn.flags.writeable
