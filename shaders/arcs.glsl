#version 330
// Attention arcs: from a layer of the tower (the newest token's state there) down to an earlier
// token on the path, as a quadratic Bezier bulging outward; brighter toward the attended token.
#ifdef VERTEX_SHADER
in float in_t;        // per vertex: 0..1 along the arc
in vec3 in_start;     // per instance
in vec3 in_end;
in float in_weight;   // the heads' mean attention, 0..1
in float in_layer;    // 0..1, bottom to top of the tower
uniform mat4 u_mvp;
out float v_t;
out float v_weight;
out float v_layer;

void main() {
    vec3 mid = 0.5 * (in_start + in_end);
    vec3 control = vec3(mid.x * 1.45, mid.y + 0.35, mid.z * 1.45);
    float t = in_t;
    vec3 p = mix(mix(in_start, control, t), mix(control, in_end, t), t);
    gl_Position = u_mvp * vec4(p, 1.0);
    v_t = t;
    v_weight = in_weight;
    v_layer = in_layer;
}
#endif

#ifdef FRAGMENT_SHADER
in float v_t;
in float v_weight;
in float v_layer;
out vec4 f_colour;
uniform vec3 u_cold;
uniform vec3 u_accent;
uniform float u_gain;

void main() {
    vec3 colour = mix(u_cold, u_accent, 0.35 + 0.65 * v_t);
    float strength = sqrt(v_weight) * (0.25 + 0.75 * v_t) * u_gain;
    f_colour = vec4(colour * strength, 1.0);
}
#endif
