#version 330
// The animated backdrop: a slow, dark nebula that stirs with the model's uncertainty (entropy)
// and brightens briefly on each new token (pulse). Dithered as it is written into the glow
// layer's 8 bits: its vignette is a dark gradient of a few levels (lib/dither.glsl).
#ifdef VERTEX_SHADER
#include "lib/fullscreen.glsl"
#endif

#ifdef FRAGMENT_SHADER
#include "lib/noise.glsl"
#include "lib/dither.glsl"
in vec2 v_uv;
out vec4 f_colour;
uniform float u_time;
uniform float u_aspect;
uniform float u_entropy;  // nats, 0 .. ~6
uniform float u_pulse;    // 1 on a new token, fading
uniform vec3 u_background;
uniform vec3 u_cold;
uniform vec3 u_warm;

void main() {
    vec2 p = (v_uv - 0.5) * vec2(u_aspect, 1.0);
    float stir = 0.02 + 0.015 * clamp(u_entropy / 4.0, 0.0, 1.0);
    float n = fbm(p * 2.2 + vec2(u_time * stir, -u_time * stir * 0.7));
    float m = fbm(p * 3.7 - vec2(u_time * 0.013, n * 0.8));
    float glow = smoothstep(0.35, 0.95, n) * 0.12 + smoothstep(0.55, 1.0, m) * 0.06;
    float vignette = 1.0 - 0.55 * dot(p, p);
    vec3 colour = u_background + u_cold * glow + u_warm * m * 0.025 * (1.0 + 2.0 * u_pulse);
    f_colour = vec4(dithered(colour * vignette), 1.0);
}
#endif
