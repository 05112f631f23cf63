#version 330
// Attention heatmaps, one instance per head: rows are recent tokens (newest at the bottom),
// columns recent positions (newest at the right); a cell's weight picks a colour on the ramp
// background → cold → warm → hot. The weights live in one atlas, a tile per (block, head).
// A weight above zero starts from u_floor (on a projector: 5 % relative luminance, so that
// what a head sees at all is not lost in a lit room's grey; else the background's lift).
#ifdef VERTEX_SHADER
in vec4 in_rect;    // x, y, width, height in pixels (origin top left)
in vec2 in_tile;    // (head, block): which tile of the atlas
uniform vec2 u_screen;
out vec2 v_uv;
flat out vec2 v_tile;

void main() {
    vec2 corner = vec2(gl_VertexID & 1, (gl_VertexID >> 1) & 1);
    vec2 pixel = in_rect.xy + corner * in_rect.zw;
    gl_Position = vec4(pixel / u_screen * vec2(2.0, -2.0) + vec2(-1.0, 1.0), 0.0, 1.0);
    v_uv = corner;
    v_tile = in_tile;
}
#endif

#ifdef FRAGMENT_SHADER
in vec2 v_uv;
flat in vec2 v_tile;
out vec4 f_colour;
uniform sampler2D u_atlas;  // R32F: weights 0..1, tile (head, block) at (head*cols, block*rows)
uniform ivec2 u_cells;      // columns, rows of one tile
uniform vec3 u_background;
uniform vec3 u_cold;
uniform vec3 u_warm;
uniform vec3 u_hot;
uniform vec3 u_floor;
uniform float u_alpha;

void main() {
    ivec2 cell = min(ivec2(v_uv * vec2(u_cells)), u_cells - 1);
    float w = texelFetch(u_atlas, ivec2(v_tile) * u_cells + cell, 0).r;
    float v = sqrt(w);  // small weights stay visible
    vec3 c = mix(w > 0.0 ? u_floor : u_background * 1.6, u_cold, smoothstep(0.0, 0.4, v));
    c = mix(c, u_warm, smoothstep(0.35, 0.75, v));
    c = mix(c, u_hot, smoothstep(0.75, 1.0, v));
    f_colour = vec4(c, u_alpha);
}
#endif
