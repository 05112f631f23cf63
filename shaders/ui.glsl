#version 330
// Screen-space panels: a rectangle in pixels (origin top-left), flat colour or a text texture.
#ifdef VERTEX_SHADER
uniform vec4 u_rect;     // x, y, width, height in pixels
uniform vec2 u_screen;   // target size in pixels
out vec2 v_uv;

void main() {
    vec2 corner = vec2(gl_VertexID & 1, (gl_VertexID >> 1) & 1);
    vec2 pixel = u_rect.xy + corner * u_rect.zw;
    gl_Position = vec4(pixel / u_screen * vec2(2.0, -2.0) + vec2(-1.0, 1.0), 0.0, 1.0);
    v_uv = corner;
}
#endif

#ifdef FRAGMENT_SHADER
in vec2 v_uv;
out vec4 f_colour;
uniform sampler2D u_texture;
uniform vec4 u_colour;
uniform bool u_textured;

void main() {
    vec4 c = u_colour;
    if (u_textured) c *= texture(u_texture, v_uv);
    f_colour = c;
}
#endif
