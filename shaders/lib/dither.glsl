// The dither of a value about to be written into 8 bits: ± half a level of blue noise (a
// 64 x 64 tile, blue_noise.pgm, made by visualizer/gl/dither.py and bound to unit 7 for the
// frame), so a dark gradient is drawn as the gradient, not as bands. Mean-preserving, and 0
// and 1 stay exact.
uniform sampler2D u_dither;

vec3 dithered(vec3 c) {
    float level = texelFetch(u_dither, ivec2(gl_FragCoord.xy) & 63, 0).r * 255.0;  // 0..255
    return c + ((level + 0.5) / 256.0 - 0.5) / 255.0;  // within ±0.5 of a level, never on it
}
