#version 330
// Bloom, step 2: a separable 9-tap Gaussian, done as 5 linear-filtered taps per direction.
#ifdef VERTEX_SHADER
#include "lib/fullscreen.glsl"
#endif

#ifdef FRAGMENT_SHADER
in vec2 v_uv;
out vec4 f_colour;
uniform sampler2D u_source;
uniform vec2 u_step;    // one texel along the blur direction
uniform float u_gain;   // the last pass applies the glow strength

void main() {
    vec3 c = texture(u_source, v_uv).rgb * 0.2270270270;
    c += texture(u_source, v_uv + u_step * 1.3846153846).rgb * 0.3162162162;
    c += texture(u_source, v_uv - u_step * 1.3846153846).rgb * 0.3162162162;
    c += texture(u_source, v_uv + u_step * 3.2307692308).rgb * 0.0702702703;
    c += texture(u_source, v_uv - u_step * 3.2307692308).rgb * 0.0702702703;
    f_colour = vec4(c * u_gain, 1.0);
}
#endif
