// The scene's light made displayable: tone-mapped, with the band behind the answer text
// darkened (cheaper here than blending a rectangle over it). Run once per pixel, at the
// render scale when there is a composite pass (composite.glsl), else in upscale.glsl; its
// output is what is written into 8 bits, so it is dithered there (dither.glsl).
uniform float u_exposure;
uniform float u_band_top;     // 0..1 from the bottom: where the text band begins
uniform float u_band_shade;   // how much the band darkens the scene
#include "dither.glsl"

vec3 finished(vec3 light, float y) {
    vec3 c = vec3(1.0) - exp(-light * u_exposure);
    float band = smoothstep(u_band_top, u_band_top - 0.04, y);
    return dithered(c * (1.0 - u_band_shade * band));
}
