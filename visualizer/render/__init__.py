"""Everything that touches OpenGL: the context, shaders, the scene's layers and the loop."""
