#version 330
// A texture onto the target as it is, one read per pixel. Written as llvmpipe's linear
// rasterizer recognises it: a window-order texture (render/context.py, window_texture) is then
// copied onto a window as memory, 0.8 ms at 720p against 2.3 for a framebuffer blit.
#ifdef VERTEX_SHADER
#include "lib/fullscreen.glsl"
#endif

#ifdef FRAGMENT_SHADER
in vec2 v_uv;
out vec4 f_colour;
uniform sampler2D u_image;

void main() {
    f_colour = texture(u_image, v_uv);
}
#endif
