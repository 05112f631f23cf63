#version 330
// The scene's light plus the glow layer (its blurred highlights over the backdrop, both at a
// quarter size), finished (lib/finish.glsl) at the render scale, so the full-size upscale
// pass after it only reads one texel per pixel.
#ifdef VERTEX_SHADER
#include "lib/fullscreen.glsl"
#endif

#ifdef FRAGMENT_SHADER
// Variant (#defined by the program's name, "composite+SPLIT"): the glitch's colour split, red
// one way and blue the other, done here at the render scale rather than in the full-size
// upscale, which then stays a plain read (copy.glsl: llvmpipe's linear path).
in vec2 v_uv;
out vec4 f_colour;
uniform sampler2D u_scene;
uniform sampler2D u_glow;
uniform float u_split;        // the glitch's colour split, in texture widths
#include "lib/finish.glsl"

#ifdef SPLIT
vec3 light(vec2 uv) {  // off the texel grid: filtered reads, clamped at the edges
    return texture(u_scene, uv).rgb + texture(u_glow, uv).rgb;
}
#endif

void main() {
#ifdef SPLIT
    vec2 d = vec2(u_split, 0.0);
    vec3 c = vec3(light(v_uv + d).r, light(v_uv).g, light(v_uv - d).b);
#else
    // the scene is this target's size: its own texel, unfiltered (a CPU renderer's bilinear
    // read costs four)
    vec3 c = texelFetch(u_scene, ivec2(gl_FragCoord.xy), 0).rgb + texture(u_glow, v_uv).rgb;
#endif
    f_colour = vec4(finished(c, v_uv.y), 1.0);
}
#endif
