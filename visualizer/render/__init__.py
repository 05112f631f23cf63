"""Drawing the scene: its layers, the renderer that composes them, and the loop (on the GL
floor of visualizer/gl/)."""
