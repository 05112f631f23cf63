#version 330
// An alpha render's last pass (render --alpha; render/layers/alpha.py). The picture was drawn
// over black without the backdrop, so each pixel is light only: its alpha is its brightest
// channel, its colour the light divided by that (straight, unmatted alpha, as PNG and ProRes
// 4444 carry it). An editor's "over" then gives light + (1 - alpha) x footage: over black, the
// picture itself; over footage, the glow laid on it, its soft edges partly transparent, with no
// dark fringe (a colour left undivided would be darkened twice, once by alpha).
#ifdef VERTEX_SHADER
#include "lib/fullscreen.glsl"
#endif

#ifdef FRAGMENT_SHADER
out vec4 f_colour;
uniform sampler2D u_image;

void main() {
    vec3 light = texelFetch(u_image, ivec2(gl_FragCoord.xy), 0).rgb;
    float alpha = max(light.r, max(light.g, light.b));
    f_colour = alpha > 0.0 ? vec4(light / alpha, alpha) : vec4(0.0);
}
#endif
