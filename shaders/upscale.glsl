#version 330
// The last, full-resolution pass: the finished scene upscaled from its render scale and
// tone-mapped, with the band behind the answer text darkened here (cheaper than blending a
// rectangle over it).
#ifdef VERTEX_SHADER
#include "lib/fullscreen.glsl"
#endif

#ifdef FRAGMENT_SHADER
// Variants (#defined by the program's name, "upscale+ADD_GLOW+SPLIT"): ADD_GLOW at render
// scale 1, where there is no composite pass and the glow is added here; SPLIT while the
// glitch splits the colours. Compiled in rather than branched on: a CPU renderer would pay
// for the texture reads of a branch not taken.
in vec2 v_uv;
out vec4 f_colour;
uniform sampler2D u_image;
uniform sampler2D u_glow;
uniform float u_gain;         // 2 when composite.glsl halved the image
uniform float u_split;        // the glitch's colour split, in texture widths
uniform float u_exposure;
uniform float u_band_top;     // 0..1 from the bottom: where the text band begins
uniform float u_band_shade;   // how much the band darkens the scene

vec3 light(vec2 uv) {
#ifdef ADD_GLOW
    return texture(u_image, uv).rgb + texture(u_glow, uv).rgb;
#else
    return texture(u_image, uv).rgb;
#endif
}

void main() {
#ifdef SPLIT
    vec2 d = vec2(u_split, 0.0);  // red one way, blue the other
    vec3 c = vec3(light(v_uv + d).r, light(v_uv).g, light(v_uv - d).b);
#else
    vec3 c = light(v_uv);
#endif
    c *= u_gain;
    c = vec3(1.0) - exp(-c * u_exposure);
    float band = smoothstep(u_band_top, u_band_top - 0.04, v_uv.y);
    f_colour = vec4(c * (1.0 - u_band_shade * band), 1.0);
}
#endif
