#version 330
// A texture onto the target as it is, one read per pixel, filtered as the texture says: the
// scene's plain upscale (layers/bloom.py; the composite's alpha is 1) and the flash limiter's
// copy. Written as llvmpipe's linear rasterizer recognises it: from a window-order texture
// (gl/context.py, window_texture) onto a window it then runs without shading each pixel, a
// 720p copy in 0.8 ms against 2.3 for a framebuffer blit. (Written vec4(texture(...).rgb, 1.0),
// that path swapped red and blue, Mesa 22.3.)
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
