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
uniform vec3 u_cold;
uniform vec3 u_warm;
uniform vec3 u_hot;
uniform float u_gain;
uniform float u_ages[4];  // seconds since each of the newest tokens arrived (features.WAVES)
uniform float u_wave;   // 1 for the tower's nodes (its arrival climbs them), 0 for the path
uniform float u_tower;  // the tower's half height (layout.TOWER_HEIGHT / 2)
const float WAVE_GAIN = 0.5;  // a band at most this much brighter (see below)
const float WAVE_S = 0.4;  // the wave's climb from the embedding to the top: 12 frames at 30 fps
#include "lib/depth.glsl"
out vec2 v_uv;
flat out vec3 v_light;  // the node's colour × intensity: the same at every pixel of its quad,
                        // so worked out per vertex (4 a node) rather than per pixel (hundreds)

void main() {
    vec4 clip = u_mvp * vec4(in_pos, 1.0);
    float size = u_size * (0.45 + 1.1 * in_level + 0.3 * u_pulse * in_level);
    clip.xy += in_corner * size * u_scale;
    gl_Position = clip;
    v_uv = in_corner;
    vec3 colour = mix(u_cold, u_warm, smoothstep(0.25, 0.85, in_hue));
    colour = mix(colour, u_hot, pow(in_level, 4.0));
    float intensity = (0.03 + 1.8 * in_level * in_level * in_level) * (1.0 + 0.6 * u_pulse) * u_gain;
    // each token's arrival: a band of light climbing the layers, as the stream flows up (at a
    // model's pace several climb at once). WAVE_GAIN keeps it under a flash: at 1.2 the
    // tower's cells made a transition with each token, 8 a second, held back by the limiter
    float wave = 0.0;
    for (int i = 0; i < 4; i++) {
        float front = mix(-u_tower - 0.3, u_tower + 0.3, u_ages[i] / WAVE_S);
        wave = max(wave, exp(-pow((in_pos.y - front) / 0.22, 2.0)) * step(u_ages[i], WAVE_S));
    }
    intensity *= 1.0 + WAVE_GAIN * u_wave * wave;
    v_light = colour * intensity * depth_fade(clip.w);
}
#endif

#ifdef FRAGMENT_SHADER
in vec2 v_uv;
flat in vec3 v_light;
out vec4 f_colour;

void main() {
    float d2 = dot(v_uv, v_uv);
    if (d2 > 1.0) discard;
    float core = exp(-d2 * 22.0);
    float halo = exp(-d2 * 4.0) * 0.3 * (1.0 - d2);
    f_colour = vec4(v_light * (core + halo), 1.0);
}
#endif
