#version 330
// The last, full-resolution pass: the finished scene upscaled from its render scale and
// tone-mapped, with the band behind the answer text darkened here (cheaper than blending a
// rectangle over it).
#ifdef VERTEX_SHADER
#include "lib/fullscreen.glsl"
#endif

#ifdef FRAGMENT_SHADER
in vec2 v_uv;
out vec4 f_colour;
uniform sampler2D u_image;
uniform sampler2D u_glow;
uniform bool u_add_glow;      // at render scale 1 there is no composite pass: add the glow here
uniform float u_gain;         // 2 when composite.glsl halved the image
uniform float u_split;        // the glitch's colour split, in texture widths (0: none)
uniform float u_exposure;
uniform float u_band_top;     // 0..1 from the bottom: where the text band begins
uniform float u_band_shade;   // how much the band darkens the scene

void main() {
    vec3 c = texture(u_image, v_uv).rgb;
    if (u_add_glow) c += texture(u_glow, v_uv).rgb;
    if (u_split > 0.0) {  // red one way, blue the other
        vec2 d = vec2(u_split, 0.0);
        c.r = texture(u_image, v_uv + d).r + (u_add_glow ? texture(u_glow, v_uv + d).r : 0.0);
        c.b = texture(u_image, v_uv - d).b + (u_add_glow ? texture(u_glow, v_uv - d).b : 0.0);
    }
    c *= u_gain;
    c = vec3(1.0) - exp(-c * u_exposure);
    float band = smoothstep(u_band_top, u_band_top - 0.04, v_uv.y);
    f_colour = vec4(c * (1.0 - u_band_shade * band), 1.0);
}
#endif
