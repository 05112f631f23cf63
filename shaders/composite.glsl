#version 330
// The scene plus its bloom, at the render scale; halved so highlights survive the 8-bit target
// (upscale.glsl doubles them back before tone mapping).
#ifdef VERTEX_SHADER
#include "lib/fullscreen.glsl"
#endif

#ifdef FRAGMENT_SHADER
in vec2 v_uv;
out vec4 f_colour;
uniform sampler2D u_scene;
uniform sampler2D u_bloom;
uniform float u_glow;

void main() {
    vec3 c = texture(u_scene, v_uv).rgb + u_glow * texture(u_bloom, v_uv).rgb;
    f_colour = vec4(0.5 * c, 1.0);
}
#endif
