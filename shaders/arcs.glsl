#version 330
// Attention arcs: from a layer of the tower (the newest token's state there) down to an earlier
// token on the path, as a quadratic Bezier bulging outward; brighter toward the attended token,
// with a pulse of light travelling out along it as each token arrives.
#ifdef VERTEX_SHADER
in float in_t;        // per vertex: 0..1 along the arc
in vec3 in_start;     // per instance
in vec3 in_end;
in float in_weight;   // the heads' mean attention, 0..1
uniform mat4 u_mvp;
uniform float u_gain;
out float v_t;
flat out float v_strength;  // the arc's own strength, the same along it: per vertex, not pixel

void main() {
    vec3 mid = 0.5 * (in_start + in_end);
    vec3 control = vec3(mid.x * 1.45, mid.y + 0.35, mid.z * 1.45);
    float t = in_t;
    vec3 p = mix(mix(in_start, control, t), mix(control, in_end, t), t);
    gl_Position = u_mvp * vec4(p, 1.0);
    v_t = t;
    v_strength = sqrt(in_weight) * u_gain;
}
#endif

#ifdef FRAGMENT_SHADER
in float v_t;
flat in float v_strength;
uniform float u_since;  // seconds since the newest token arrived (its arcs these)
const float ARC_S = 0.3;  // a pulse's way from the tower to the token it attends to: 9 frames
out vec4 f_colour;
uniform vec3 u_cold;
uniform vec3 u_accent;

void main() {
    vec3 colour = mix(u_cold, u_accent, 0.35 + 0.65 * v_t);
    float strength = v_strength * (0.25 + 0.75 * v_t);
    // the newest token's attention travelling out along the arc after it arrives
    float pulse = exp(-pow((v_t - u_since / ARC_S) / 0.08, 2.0)) * step(u_since, 1.2 * ARC_S);
    strength *= 1.0 + 1.5 * pulse;
    f_colour = vec4(colour * strength, 1.0);
}
#endif
