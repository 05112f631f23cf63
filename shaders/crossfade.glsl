#version 330
// A soft cut between two looks: the outgoing look's finished frame, laid over the incoming one
// with a weight that falls from 1 to 0 (projectM blends presets the same way).
#ifdef VERTEX_SHADER
#include "lib/fullscreen.glsl"
#endif

#ifdef FRAGMENT_SHADER
in vec2 v_uv;
out vec4 f_colour;
uniform sampler2D u_image;
uniform float u_weight;       // of the outgoing look: 1 at the cut, 0 when it has gone

void main() {
    f_colour = vec4(texture(u_image, v_uv).rgb, u_weight);
}
#endif
