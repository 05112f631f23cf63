#version 330
// The full-resolution pass at render scale 1, where there is no composite pass: the light and
// the glow layer added and finished here, one texel of the light per pixel. Below render scale
// 1 the composite (composite.glsl) finishes the light at the render scale and the full-size
// pass is a plain read: copy.glsl, which llvmpipe's linear rasterizer can do.
#ifdef VERTEX_SHADER
#include "lib/fullscreen.glsl"
#endif

#ifdef FRAGMENT_SHADER
// Variant (#defined by the program's name, "upscale+SPLIT"): SPLIT while the glitch splits the
// colours. Compiled in rather than branched on: a CPU renderer would pay for the texture reads
// of a branch not taken.
in vec2 v_uv;
out vec4 f_colour;
uniform sampler2D u_image;
uniform sampler2D u_glow;
uniform float u_split;        // the glitch's colour split, in texture widths
#include "lib/finish.glsl"

vec3 light(vec2 uv) {
    // the image is the target's size: its texel, unfiltered (a CPU renderer's bilinear read
    // costs four), the edge's where the split reaches past it
    ivec2 size = textureSize(u_image, 0);
    ivec2 texel = clamp(ivec2(uv * vec2(size)), ivec2(0), size - 1);
    return texelFetch(u_image, texel, 0).rgb + texture(u_glow, uv).rgb;
}

void main() {
#ifdef SPLIT
    vec2 d = vec2(u_split, 0.0);  // red one way, blue the other
    vec3 c = vec3(light(v_uv + d).r, light(v_uv).g, light(v_uv - d).b);
#else
    vec3 c = light(v_uv);
#endif
    f_colour = vec4(finished(c, v_uv.y), 1.0);
}
#endif
