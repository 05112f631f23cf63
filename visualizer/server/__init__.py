"""`neuroweb serve`: the model as a server, for windows on other machines (a GPU box in another
room, a model bigger than the laptop at the talk). The protocol is wire's.

Two threads and one handoff between them:
- the network thread (`network_thread.py`, the Server) owns the ROUTER socket: it checks every
  message, answers, refuses and forwards what the model thread made;
- the model thread (`model_thread.py`) loads the model and runs one answer at a time; what it
  makes goes to the network thread through an inproc ZeroMQ pair (sockets are never shared
  between threads). `sessions.py`: what the two hand each other.

Security (`curve.py`): it binds to loopback by default; any other address needs CURVE keys
(--keys DIR, network.py): the traffic is encrypted and only clients whose public keys are in
DIR/clients are let in. A shared token (--token-file) may be asked for as well, compared in
constant time on every message. `command.py`: `neuroweb serve` itself.
"""

from visualizer.server.command import serve_command
from visualizer.server.network_thread import Server

__all__ = ["Server", "serve_command"]
