#version 330
// Links between nodes of adjacent layers, lit by the activations they join (additive lines).
#ifdef VERTEX_SHADER
in float in_end;     // per vertex: 0 = start, 1 = end
in vec3 in_a;        // per instance
in vec3 in_b;
in float in_value;   // 0..1: geometric mean of the two nodes' levels
in float in_hue;
uniform mat4 u_mvp;
out float v_value;
out float v_hue;

void main() {
    gl_Position = u_mvp * vec4(mix(in_a, in_b, in_end), 1.0);
    v_value = in_value;
    v_hue = in_hue;
}
#endif

#ifdef FRAGMENT_SHADER
in float v_value;
in float v_hue;
out vec4 f_colour;
uniform vec3 u_cold;
uniform vec3 u_warm;
uniform float u_gain;

void main() {
    vec3 colour = mix(u_cold, u_warm, smoothstep(0.3, 0.8, v_hue));
    float intensity = 0.03 + 0.9 * pow(v_value, 3.0);
    f_colour = vec4(colour * intensity * u_gain, 1.0);
}
#endif
