"""Photosensitive safety: measuring flashes, and limiting them in what neuroweb shows."""
