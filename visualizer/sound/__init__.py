"""The soundtrack synthesised from the frames, and its way to the speakers."""
