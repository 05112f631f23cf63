#version 330
// Bloom, step 1: downsample the scene and keep what is brighter than the threshold (soft knee).
#ifdef VERTEX_SHADER
#include "lib/fullscreen.glsl"
#endif

#ifdef FRAGMENT_SHADER
in vec2 v_uv;
out vec4 f_colour;
uniform sampler2D u_scene;
uniform vec2 u_texel;   // one texel of the scene
uniform float u_threshold;

void main() {
    vec3 c = texture(u_scene, v_uv + u_texel * vec2(-1, -1)).rgb
           + texture(u_scene, v_uv + u_texel * vec2(1, -1)).rgb
           + texture(u_scene, v_uv + u_texel * vec2(-1, 1)).rgb
           + texture(u_scene, v_uv + u_texel * vec2(1, 1)).rgb;
    c *= 0.25;
    float brightness = max(c.r, max(c.g, c.b));
    float keep = smoothstep(u_threshold * 0.5, u_threshold * 1.5, brightness);
    f_colour = vec4(c * keep, 1.0);
}
#endif
