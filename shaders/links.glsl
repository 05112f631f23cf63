#version 330
// Links between nodes of adjacent layers, lit by the activations they join (additive lines).
#ifdef VERTEX_SHADER
in float in_end;     // per vertex: 0 = start, 1 = end
in vec3 in_a;        // per instance
in vec3 in_b;
in float in_value;   // 0..1: geometric mean of the two nodes' levels
in float in_hue;
uniform mat4 u_mvp;
uniform vec3 u_cold;
uniform vec3 u_warm;
uniform float u_gain;
#include "lib/depth.glsl"
flat out vec3 v_light;  // the link's colour × intensity, the same along it: worked out per
                        // vertex (two a link) rather than per pixel

void main() {
    gl_Position = u_mvp * vec4(mix(in_a, in_b, in_end), 1.0);
    vec3 colour = mix(u_cold, u_warm, smoothstep(0.3, 0.8, in_hue));
    float intensity = 0.03 + 0.9 * pow(in_value, 3.0);
    float w = (u_mvp * vec4(mix(in_a, in_b, 0.5), 1.0)).w;  // the link's middle: one fade
    v_light = colour * intensity * u_gain * depth_fade(w);
}
#endif

#ifdef FRAGMENT_SHADER
flat in vec3 v_light;
out vec4 f_colour;

void main() {
    f_colour = vec4(v_light, 1.0);
}
#endif
