"""Many viewers of one model: `neuroweb serve` sends every answer to each client that watches
(a projector, an operator's laptop, a stream), the answer running from its start to one that
joins late; only a client that does not watch asks for answers."""

import time

import pytest

from tests.test_server import _raw_client, _state
from visualizer import wire
from visualizer.config import GenerationSettings, load_settings
from visualizer.sources.remote import WATCHING, RemoteSource

BOUND_S = 60.0  # a bound on waits, not a timing


@pytest.fixture
def server(shared_server):
    """The session's server of the tiny model (conftest.py): each test's answers end before
    the next test begins."""
    return shared_server


def _settings(address: str, watch: bool = False, tokens: int = 12):
    return load_settings("default", {"model": {"source": address, "watch": watch},
                                     "generation": {"temperature": 0.0,
                                                    "max_tokens": tokens}})  # fmt: skip


def _connected(source):
    """The first status of `source` that comes from its server."""
    deadline = time.monotonic() + BOUND_S
    while (status := source.drain(0.2).status).state in ("starting", "loading"):
        assert time.monotonic() < deadline, status
    return status


def _frames_of(source, request: int, seconds: float = BOUND_S) -> list[tuple[int, int]]:
    """(index, token id) of every frame `source` is sent until answer `request` finished."""
    seen, deadline = [], time.monotonic() + seconds
    while True:
        assert time.monotonic() < deadline, "the answer did not finish"
        batch = source.drain(0.2)
        assert batch.failure is None, batch.failure
        seen += [(f.index, f.token_id) for f in batch.frames]
        status = batch.status
        if status.request == request and status.state == "finished":
            return seen + [(f.index, f.token_id) for f in source.drain(0.3).frames]


def test_two_then_four_viewers_get_the_asker_s_frames_in_its_order(server):
    sources = []
    try:
        asker = RemoteSource(_settings(server.address)).start()
        viewers = [RemoteSource(_settings(server.address, watch=True)).start() for _ in range(2)]
        sources += [asker, *viewers]
        _state(asker, "ready")
        for viewer in viewers:  # a viewer sees the server's last answer's state, whatever it is
            _connected(viewer)
        for prompt, joining in (("Name a colour.", 2), ("Name a fruit.", 0)):
            request = asker.generate(prompt)
            asked = _frames_of(asker, request)
            assert len(asked) > 12  # the prompt's frames and the answer's
            for viewer in viewers:
                assert _frames_of(viewer, request) == asked
            more = [RemoteSource(_settings(server.address, watch=True)).start()
                    for _ in range(joining)]  # fmt: skip
            for viewer in more:
                _state(viewer, "finished")  # the last answer's status: sent as it joins
            sources += more
            viewers += more
        assert len(viewers) == 4
    finally:
        for source in sources:
            source.stop()


def _raw_frames(sock, request: int, seconds: float = BOUND_S) -> list[tuple[int, int]]:
    """(index, token id) of the frames a raw client is sent until answer `request` finished
    (or, with `seconds` short, until it is sent nothing for that long)."""
    seen = []
    while sock.poll(seconds * 1000):
        message, _ = wire.unpack(sock.recv_multipart(), 1 << 26, wire.ServerMessage)
        if isinstance(message, wire.FrameMessage):
            seen.append((message.index, message.token_id))
        elif isinstance(message, wire.StatusMessage):
            body = message.status
            if body.request == request and body.state == "finished":
                return seen
    return seen


def test_a_viewer_joining_mid_answer_is_sent_it_from_its_start(server):
    """The asker is a lossless client with room for 30 frames that grants no more: the model
    waits in the middle of the answer. A viewer that joins then is sent those 30, from the
    answer's first, and the rest as they come once the asker makes room."""
    asker = _raw_client(server.address)
    viewer = None
    try:
        asker.send_multipart(wire.pack(wire.Hello(lossless=True, credit=30)))
        gen = GenerationSettings(max_tokens=200, temperature=0.0)
        asker.send_multipart(wire.pack(wire.Generate(request=1, prompt="Go on.", gen=gen)))
        asked = _raw_frames(asker, 1, seconds=2.0)  # then nothing: the model waits
        assert len(asked) == 30
        viewer = RemoteSource(_settings(server.address, watch=True)).start()
        joined = []
        deadline = time.monotonic() + BOUND_S
        while len(joined) < 30:
            assert time.monotonic() < deadline, joined
            joined += [(f.index, f.token_id) for f in viewer.drain(0.2).frames]
        assert joined == asked and joined[0][0] == 0  # from the answer's first position
        asker.send_multipart(wire.pack(wire.Credit(n=4096)))
        asked += _raw_frames(asker, 1)
        assert len(asked) > 200 and joined + _frames_of(viewer, 1) == asked
    finally:
        asker.close(0)
        if viewer is not None:
            viewer.stop()


def test_a_viewer_cannot_ask_for_an_answer(server):
    sock = _raw_client(server.address)
    viewer = RemoteSource(_settings(server.address, watch=True)).start()
    try:
        sock.send_multipart(wire.pack(wire.Hello(watch=True)))
        message, _ = wire.unpack(sock.recv_multipart(), wire.MAX_STATUS, wire.ServerMessage)
        assert isinstance(message, wire.StatusMessage)
        for asked in (wire.Generate(request=1, prompt="Hi"), wire.Cancel(),
                      wire.Intervene(interventions=wire.InterventionsSpec(ablate=("mlp:1",)))):
            sock.send_multipart(wire.pack(asked))
            refused, _ = wire.unpack(sock.recv_multipart(), wire.MAX_STATUS, wire.ServerMessage)
            assert isinstance(refused, wire.ErrorMessage) and refused.code == "viewer", refused
        before = _connected(viewer)
        viewer.generate("Hi")  # a prompt typed into a viewer's window: said there, not sent
        batch = viewer.drain(1.0)
        assert batch.failure is not None
        assert batch.failure.message == WATCHING.format(viewer.address)
        time.sleep(1.0)
        after = viewer.drain(0.0)  # the server started no answer
        assert not after.frames and after.status.request == before.request
        assert after.status.state == before.state
    finally:
        sock.close(0)
        viewer.stop()
