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
// Compiled as variants (gl/shaders.py: a CPU renderer runs both sides of a branch): HOLD mixes
// from the last shown frame, SOFTEN softens; the limiter asks for the ones a frame needs.
#include "lib/colour.glsl"
in vec2 v_uv;
out vec4 f_colour;
uniform sampler2D u_frame;     // the new frame as drawn
uniform sampler2D u_previous;  // the frame shown last
uniform sampler2D u_soften;    // per window (linear between their centres): r its mean
                               // relative luminance, g how far a pixel's moves toward it
uniform float u_amount;        // less than 1: held back toward the last shown frame

const vec3 LUMINANCE = vec3(0.2126, 0.7152, 0.0722);

void main() {
    vec3 colour = to_linear(texture(u_frame, v_uv).rgb);
#ifdef HOLD
    colour = mix(to_linear(texture(u_previous, v_uv).rgb), colour, u_amount);
#endif
#ifdef SOFTEN
    vec2 soften = texture(u_soften, v_uv).rg;
    float light = dot(colour, LUMINANCE);
    colour = clamp(colour + soften.g * (soften.r - light), 0.0, 1.0);
#endif
    f_colour = vec4(to_srgb(colour), 1.0);
}
#endif
