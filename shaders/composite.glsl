#version 330
// The scene's light plus the glow layer (its blurred highlights over the backdrop, both at a
// quarter size), at the render scale; halved so highlights survive the 8-bit target
// (upscale.glsl doubles them back before tone mapping).
#ifdef VERTEX_SHADER
#include "lib/fullscreen.glsl"
#endif

#ifdef FRAGMENT_SHADER
in vec2 v_uv;
out vec4 f_colour;
uniform sampler2D u_scene;
uniform sampler2D u_glow;

void main() {
    vec3 c = texture(u_scene, v_uv).rgb + texture(u_glow, v_uv).rgb;
    f_colour = vec4(0.5 * c, 1.0);
}
#endif
