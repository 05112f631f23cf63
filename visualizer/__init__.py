"""neuroweb: a real-time generative visualizer of a language model's mind."""

__version__ = "0.1.0"
