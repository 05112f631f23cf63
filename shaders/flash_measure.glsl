#version 330
// Flash limiter, step 1: the frame's relative luminance and red value (WCAG's saturated red:
// (R - G - B) × 320 where R / (R + G + B) ≥ 0.8), averaged over each cell of a coarse grid
// (one fragment per cell, 8 × 8 taps across it: u_frame holds just the frame's pixels at the
// taps, safety/limiter.py), for the CPU to judge.
#ifdef VERTEX_SHADER
#include "lib/fullscreen.glsl"
#endif

#ifdef FRAGMENT_SHADER
#include "lib/colour.glsl"
in vec2 v_uv;
out vec4 f_colour;
uniform sampler2D u_frame;
uniform vec2 u_cells;  // the grid's size

void main() {
    vec2 cell = floor(v_uv * u_cells);
    float luminance = 0.0;
    float red = 0.0;
    for (int i = 0; i < 8; i++) {
        for (int j = 0; j < 8; j++) {
            vec2 uv = (cell + (vec2(i, j) + 0.5) / 8.0) / u_cells;
            vec3 c = texture(u_frame, uv).rgb;
            luminance += dot(to_linear(c), vec3(0.2126, 0.7152, 0.0722));
            float saturated = step(0.8, c.r / max(c.r + c.g + c.b, 1e-6));
            red += saturated * max(0.0, (c.r - c.g - c.b) * 320.0);
        }
    }
    f_colour = vec4(luminance / 64.0, red / 64.0, 0.0, 1.0);
}
#endif
