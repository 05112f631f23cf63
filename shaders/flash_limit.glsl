#version 330
// Flash limiter, step 2: what is shown is the last shown frame moved toward the new one by
// u_amount, mixed in linear light so the luminance moves by exactly that share.
#ifdef VERTEX_SHADER
#include "lib/fullscreen.glsl"
#endif

#ifdef FRAGMENT_SHADER
#include "lib/colour.glsl"
in vec2 v_uv;
out vec4 f_colour;
uniform sampler2D u_frame;     // the new frame as drawn
uniform sampler2D u_previous;  // the frame shown last
uniform float u_amount;        // 1: the new frame as is; less: held back toward the last

void main() {
    vec3 now = to_linear(texture(u_frame, v_uv).rgb);
    vec3 before = to_linear(texture(u_previous, v_uv).rgb);
    f_colour = vec4(to_srgb(mix(before, now, u_amount)), 1.0);
}
#endif
