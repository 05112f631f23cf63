"""The OpenGL floor that rendering and the flash limiter both stand on: the context, textures
in the window's pixel order, and the shader library."""
