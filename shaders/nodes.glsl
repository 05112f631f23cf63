#version 330
// Glowing nodes: one camera-facing quad per node (or per token on the path), drawn additively.
#ifdef VERTEX_SHADER
in vec2 in_corner;   // per vertex: -1..1
in vec3 in_pos;      // per instance: world position
in float in_level;   // 0..1 brightness
in float in_hue;     // 0..1 cold → warm
uniform mat4 u_mvp;
uniform vec2 u_scale;   // projection's x and y focal factors
uniform float u_size;   // world size of a node at level 0.5
uniform float u_pulse;
out vec2 v_uv;
out float v_level;
out float v_hue;

void main() {
    vec4 clip = u_mvp * vec4(in_pos, 1.0);
    float size = u_size * (0.45 + 1.1 * in_level + 0.3 * u_pulse * in_level);
    clip.xy += in_corner * size * u_scale;
    gl_Position = clip;
    v_uv = in_corner;
    v_level = in_level;
    v_hue = in_hue;
}
#endif

#ifdef FRAGMENT_SHADER
in vec2 v_uv;
in float v_level;
in float v_hue;
out vec4 f_colour;
uniform vec3 u_cold;
uniform vec3 u_warm;
uniform vec3 u_hot;
uniform float u_pulse;
uniform float u_gain;

void main() {
    float d2 = dot(v_uv, v_uv);
    if (d2 > 1.0) discard;
    float core = exp(-d2 * 22.0);
    float halo = exp(-d2 * 4.0) * 0.3 * (1.0 - d2);
    vec3 colour = mix(u_cold, u_warm, smoothstep(0.25, 0.85, v_hue));
    colour = mix(colour, u_hot, pow(v_level, 4.0));
    float intensity = (0.03 + 1.8 * v_level * v_level * v_level) * (1.0 + 0.6 * u_pulse) * u_gain;
    f_colour = vec4(colour * (core + halo) * intensity, 1.0);
}
#endif
