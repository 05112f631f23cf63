#version 330
// The scene's light plus the glow layer (its blurred highlights over the backdrop, both at a
// quarter size), finished (lib/finish.glsl) at the render scale, so the full-size upscale
// pass after it only reads one texel per pixel.
#ifdef VERTEX_SHADER
#include "lib/fullscreen.glsl"
#endif

#ifdef FRAGMENT_SHADER
in vec2 v_uv;
out vec4 f_colour;
uniform sampler2D u_scene;
uniform sampler2D u_glow;
#include "lib/finish.glsl"

void main() {
    // the scene is this target's size: its own texel, unfiltered (a CPU renderer's bilinear
    // read costs four)
    vec3 c = texelFetch(u_scene, ivec2(gl_FragCoord.xy), 0).rgb + texture(u_glow, v_uv).rgb;
    f_colour = vec4(finished(c, v_uv.y), 1.0);
}
#endif
