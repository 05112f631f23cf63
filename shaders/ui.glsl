#version 330
// Screen-space panels, all of a painter's quads in one instanced draw: each a rectangle in
// pixels (origin top-left) showing a region of the text atlas tinted by its colour (a flat
// rectangle shows the atlas's white patch).
#ifdef VERTEX_SHADER
in vec4 in_rect;     // x, y, width, height in pixels
in vec4 in_uv;       // the atlas region: u0, v0 (top left), u1, v1
in vec4 in_colour;
uniform vec2 u_screen;   // target size in pixels
out vec2 v_uv;
flat out vec4 v_colour;  // the same over the quad: not interpolated per pixel

void main() {
    vec2 corner = vec2(gl_VertexID & 1, (gl_VertexID >> 1) & 1);
    vec2 pixel = in_rect.xy + corner * in_rect.zw;
    gl_Position = vec4(pixel / u_screen * vec2(2.0, -2.0) + vec2(-1.0, 1.0), 0.0, 1.0);
    v_uv = mix(in_uv.xy, in_uv.zw, corner);
    v_colour = in_colour;
}
#endif

#ifdef FRAGMENT_SHADER
in vec2 v_uv;
flat in vec4 v_colour;
out vec4 f_colour;
uniform sampler2D u_texture;

void main() {
    f_colour = v_colour * texture(u_texture, v_uv);
}
#endif
