// Atmospheric perspective: light behind the tower's axis (clip w beyond u_depth, the axis's
// distance from the eye) dims by up to FAR_FADE at the far side of the ring, so the near side
// of the web reads in front. u_depth is set by the layer (layers/layer.py: LayerInput.depth).
uniform float u_depth;
const float FAR_FADE = 0.4;
const float RING = 0.75;  // layout.RING_RADIUS

float depth_fade(float w) {
    return 1.0 - FAR_FADE * smoothstep(-RING, RING, w - u_depth);
}
