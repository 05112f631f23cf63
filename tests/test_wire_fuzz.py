"""A bounded fuzz of `neuroweb serve` on loopback (hypothesis): thousands of generated messages,
valid and invalid, typed and mistyped, raw bytes among them; each drawn message is sent as it
is, cut short, and with one byte changed. The server answers an ordinary
request after them, and what its own code holds in memory does not grow. A longer run: set
NEUROWEB_FUZZ_EXAMPLES."""

import os
import threading
import time
import tracemalloc

import msgpack
import psutil
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.test_server import _raw_client, free_port
from tests.test_server_faults import ORDINARY, _answered, _hello
from visualizer import wire
from visualizer.config import load_settings
from visualizer.server import Server

EXAMPLES = int(os.environ.get("NEUROWEB_FUZZ_EXAMPLES", "1000"))  # × 3 messages each
TYPES = ("hello", "generate", "intervene", "cancel", "ping", "credit", "bye", "status", "frame",
         "failure", "error", "", "generat")  # fmt: skip

leaf = (st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1)
        | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=40)
        | st.binary(max_size=40))  # fmt: skip
value = st.recursive(leaf, lambda inner: st.lists(inner, max_size=4)
                     | st.dictionaries(st.text(max_size=12), inner, max_size=4),
                     max_leaves=12)  # fmt: skip
# the fields of the real messages, each given a mistyped or out-of-range value now and then
gen = st.fixed_dictionaries({}, optional={
    "max_tokens": st.integers(-3, 4) | value, "temperature": st.floats() | st.integers(-2, 12),
    "top_k": st.integers(-1, 10**7), "top_p": st.floats(), "seed": st.integers(-1, 2**64 - 1),
    "raw": st.booleans() | value, "context": st.integers(-1, 2**30)})  # fmt: skip
fields = {
    "token": st.text(max_size=20) | value, "request": st.integers(-1, 2**63) | value,
    "prompt": st.text(max_size=60) | value, "gen": gen | value, "n": st.integers(-1, 5000),
    "detail": st.fixed_dictionaries({}, optional={
        "dtype": st.sampled_from(["float16", "float32", "int8"]),
        "attention": st.integers(-1, 2**21), "nodes": st.integers(-1, 5000),
        "quantize": st.booleans()}) | value,
    "interventions": st.fixed_dictionaries({}, optional={
        "ablate": st.lists(st.sampled_from(["mlp:1", "attn:0", "head:0.1", "mlp:99", "x"])),
        "steer": st.lists(st.sampled_from(["1:2:a|b", "1:inf:a|b", "0:nan:a|b", "1:1e39:a|b"])),
        "ghost": st.booleans()}) | value,
    "lossless": st.booleans() | value, "credit": st.integers(-1, 5000), "extra": value,
}
typed = st.fixed_dictionaries(
    {"v": st.sampled_from([wire.WIRE_VERSION] * 8 + [1, "2", None]),
     "type": st.sampled_from(TYPES)}, optional=fields)  # fmt: skip
message = (typed.map(lambda h: [msgpack.packb(h)])
           | st.lists(st.binary(max_size=200), min_size=1, max_size=3)
           | st.tuples(typed, st.binary(max_size=64)).map(
               lambda p: [msgpack.packb(p[0]), p[1]]))  # fmt: skip


def _ours(snapshot: tracemalloc.Snapshot) -> int:
    """Bytes still held that were allocated by the package's own code."""
    mine = snapshot.filter_traces([tracemalloc.Filter(True, "*/visualizer/*")])
    return sum(stat.size for stat in mine.statistics("filename"))


def _settle(sock, server: Server, quiet_s: float = 0.5, seconds: float = 30.0) -> int:
    """Take replies until the server has refused nothing more and sent nothing for `quiet_s`
    (it has handled what was sent: nearly every fuzzed message is refused); bounded by
    `seconds`. Returns the replies taken."""
    taken, deadline = 0, time.monotonic() + seconds
    while time.monotonic() < deadline:
        refused = server.refused
        if sock.poll(int(quiet_s * 1000)):
            while sock.poll(0):
                sock.recv_multipart()
                taken += 1
        elif server.refused == refused:
            return taken
    raise AssertionError(f"the server did not settle in {seconds} s")


def test_thousands_of_generated_messages_break_nothing_and_leave_nothing(tiny_llama_dir):
    settings_ = load_settings("default", {"model": {"name": str(tiny_llama_dir), "threads": 1},
                                          "serve": {"max_tokens": 4}})  # fmt: skip
    port = free_port()
    server = Server(settings_, "127.0.0.1", port, None, None, "float32")
    thread = threading.Thread(target=server.run, name="fuzzed-serve")
    thread.start()
    address = f"127.0.0.1:{port}"
    sock = _raw_client(address)
    sent, replies, held = [0], [0], []
    try:
        _hello(sock)
        drawn: list[list[bytes]] = []

        @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
                  suppress_health_check=list(HealthCheck))  # fmt: skip
        @given(message, st.randoms(use_true_random=False))
        def draw(parts: list[bytes], rng) -> None:
            head = parts[0]
            cut = head[: rng.randrange(len(head) + 1)]
            flipped = bytearray(head or b"\0")
            flipped[rng.randrange(len(flipped))] ^= 1 << rng.randrange(8)
            drawn.extend((parts, [cut, *parts[1:]], [bytes(flipped), *parts[1:]]))

        draw()  # drawn first, untraced: tracing hypothesis's drawing made the test 10x slower
        tracemalloc.start(1)
        began = time.monotonic()
        for variant in drawn:
            sock.send_multipart(variant)
            sent[0] += 1
            while sock.poll(0):  # take the replies as they come: nothing piles up here
                sock.recv_multipart()
                replies[0] += 1
            if sent[0] % (len(drawn) // 3) == 0:  # once the server has caught up
                replies[0] += _settle(sock, server)
                held.append(_ours(tracemalloc.take_snapshot()))
        took = time.monotonic() - began
        rss = psutil.Process().memory_info().rss / 2**20
        tracemalloc.stop()
        assert thread.is_alive(), server.model.gone
        # an ordinary request, from a fresh client, is answered
        sock.close()
        sock = _raw_client(address)
        _hello(sock)
        sock.send_multipart([msgpack.packb({"v": wire.WIRE_VERSION, **ORDINARY,
                                            "request": 1})])  # fmt: skip
        assert _answered(sock, 1)
        print(f"fuzz: {sent[0]} messages in {took:.1f} s, {replies[0]} replies, "
              f"{server.refused} refused, {server.model.answers} answers, "
              f"{server.model.failed} failed; "
              f"held by our code after each third: {held} bytes; RSS {rss:.0f} MB")
        assert sent[0] >= 2.7 * EXAMPLES and server.refused > EXAMPLES
        # what the package's code holds is bounded by the sessions it keeps (a few hundred
        # bytes each, forgotten after SESSION_S) and its latest status: it may not grow with
        # the count of messages. Between the first and the last third: under 64 KiB, where a
        # leak of one header (≥ 40 bytes) per message would be ≥ 80 KB (2000 messages).
        assert len(held) >= 2 and held[-1] - held[0] < 64 * 1024, held
    finally:
        if tracemalloc.is_tracing():
            tracemalloc.stop()
        sock.close()
        server.stop()
        thread.join(30)
    assert server.exit_status == 0
