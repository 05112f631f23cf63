#version 330
// Flash limiter, step 2: what is shown is the last shown frame moved toward the new one by
// u_amount, mixed in linear light so the luminance moves by exactly that share; then, where the
// pattern guard softens regular stripes (safety/stripes.py), each pixel's relative luminance
// moved toward its cell's mean, its colour kept (the difference added as grey), so the bars
// lose their contrast and the cell keeps its light.
#ifdef VERTEX_SHADER
#include "lib/fullscreen.glsl"
#endif

#ifdef FRAGMENT_SHADER
#include "lib/colour.glsl"
in vec2 v_uv;
out vec4 f_colour;
uniform sampler2D u_frame;     // the new frame as drawn
uniform sampler2D u_previous;  // the frame shown last
uniform sampler2D u_soften;    // per cell (linear between their centres): r the cell's mean
                               // relative luminance, g how far a pixel's moves toward it
uniform float u_amount;        // 1: the new frame as is; less: held back toward the last
uniform bool u_softening;      // whether any cell is softened

const vec3 LUMINANCE = vec3(0.2126, 0.7152, 0.0722);

void main() {
    vec3 colour = to_linear(texture(u_frame, v_uv).rgb);
    if (u_amount < 1.0) {
        colour = mix(to_linear(texture(u_previous, v_uv).rgb), colour, u_amount);
    }
    if (u_softening) {
        vec2 soften = texture(u_soften, v_uv).rg;
        float light = dot(colour, LUMINANCE);
        colour = clamp(colour + soften.g * (soften.r - light), 0.0, 1.0);
    }
    f_colour = vec4(to_srgb(colour), 1.0);
}
#endif
