"""The renderer on real GL (Mesa llvmpipe through EGL, no window): shaders, regions, determinism."""

import shutil

import moderngl
import numpy as np
import pytest

from tests.synthetic import synthetic_frame
from visualizer.config import load_settings
from visualizer.features import SceneState
from visualizer.frame import Frame
from visualizer.gl.context import HeadlessTarget
from visualizer.gl.shaders import SHADER_DIR, ShaderError, ShaderLibrary, compile_file
from visualizer.render import layout
from visualizer.render.camera import Camera
from visualizer.render.layers.layer import Overlay
from visualizer.render.passes import PassTimes
from visualizer.render.renderer import Renderer, read_rgb

SIZE = (480, 270)
L, D, D_FF, H = 6, 64, 128, 4
OVERLAY = Overlay("generating", "", 1.0, "test", L, "a prompt", None, False, None, (), (), ())


@pytest.fixture
def target():
    t = HeadlessTarget(SIZE)
    yield t
    t.close()


def make_frame(index: int, hidden: np.ndarray, text: str = " word") -> Frame:
    attn = np.full((L, H, index + 1), 1.0 / (index + 1), np.float32)
    return synthetic_frame(
        index, hidden, np.ones((L, D_FF), np.float32), attn, text=text,
        topk_probs=np.linspace(0.5, 0.01, 10, dtype=np.float32),
        topk_text=tuple(f" c{i}" for i in range(10)),
    )


def steady_scene(look) -> tuple[SceneState, np.ndarray]:
    """A scene whose running statistics have settled on one constant frame."""
    base = np.random.default_rng(0).uniform(0.5, 1.5, (L + 1, D)).astype(np.float32)
    scene = SceneState(look)
    for i in range(30):
        scene.ingest(make_frame(i, base))
        scene.advance(1.0)
    return scene, base


def render(target, renderer, scene) -> np.ndarray:
    renderer.draw(target.fbo, SIZE, scene, OVERLAY, Camera(0.0), time=1.0)
    return read_rgb(target.fbo, SIZE).astype(np.float32)


def row_region(row: int, rows: int, nodes: int) -> tuple[slice, slice]:
    """Screen rows/columns covering one tower row's nodes (front half), from the camera."""
    pos = layout.node_positions(rows, nodes)[row]
    clip = np.c_[pos, np.ones(len(pos))] @ Camera(0.0).matrix(SIZE[0] / SIZE[1]).T
    ndc = clip[:, :2] / clip[:, 3:]
    x = (ndc[:, 0] + 1) / 2 * SIZE[0]
    y = (1 - ndc[:, 1]) / 2 * SIZE[1]
    return slice(int(y.min()) - 3, int(y.max()) + 4), slice(int(x.min()), int(x.max()) + 1)


def test_every_shader_compiles(target):
    names = sorted(p.stem for p in SHADER_DIR.glob("*.glsl"))
    assert {"background", "nodes", "links", "arcs", "composite", "ui"} <= set(names)
    for name in names:
        program, files = compile_file(target.ctx, SHADER_DIR / f"{name}.glsl")
        assert files[0].name == f"{name}.glsl"
        program.release()


def test_lighting_one_layer_lights_that_layers_region(target):
    look = load_settings("default").look
    renderer = Renderer(target.ctx, look, limit_flashes=False, passes=PassTimes(target.ctx))
    scene, base = steady_scene(look)
    before = render(target, renderer, scene)
    lit = base.copy()
    lit[5] *= 40.0  # block 5's output, a row near the top of the tower
    scene.ingest(make_frame(30, lit))
    scene.advance(1.0)
    after = render(target, renderer, scene)
    rows, nodes = scene.level.shape
    top = row_region(5, rows, nodes)
    bottom = row_region(1, rows, nodes)
    gain_top = after[top].mean() - before[top].mean()
    gain_bottom = after[bottom].mean() - before[bottom].mean()
    assert gain_top > 8, gain_top  # clearly brighter where row 5 is drawn
    assert gain_top > 4 * abs(gain_bottom), (gain_top, gain_bottom)
    renderer.release()


def test_the_same_frames_render_the_same_image(target):
    look = load_settings("default").look
    images = []
    for _ in range(2):
        renderer = Renderer(target.ctx, look, limit_flashes=False, passes=PassTimes(target.ctx))
        scene, _ = steady_scene(look)
        images.append(render(target, renderer, scene))
        renderer.release()
    assert np.array_equal(images[0], images[1])
    assert images[0].std() > 5  # and it is not a blank image


def test_a_broken_shader_edit_keeps_the_last_good_program(target, tmp_path):
    folder = tmp_path / "shaders"
    shutil.copytree(SHADER_DIR, folder)
    library = ShaderLibrary(target.ctx, folder)
    live = library.get("nodes")
    good = live.program
    path = folder / "nodes.glsl"
    source = path.read_text()
    path.write_text(source.replace("float d2 = dot(v_uv, v_uv);", "float d2 = dot(v_uv, v_uv)"))
    _touch_later(path)
    assert library.reload_changed() == []
    assert live.program is good  # still drawing with the last good program
    error = library.errors["nodes"]
    assert error.startswith("nodes.glsl:") and "error" in error.lower()
    path.write_text(source.replace("exp(-d2 * 22.0)", "exp(-d2 * 30.0)"))
    _touch_later(path)
    assert library.reload_changed() == ["nodes"]
    assert live.program is not good and "nodes" not in library.errors
    background = library.get("background").program
    (folder / "lib" / "noise.glsl").write_text("float broken(")  # an included file
    _touch_later(folder / "lib" / "noise.glsl")
    assert library.reload_changed() == []
    assert "background" in library.errors and library.get("background").program is background


def test_a_first_compile_error_names_the_file(target, tmp_path):
    (tmp_path / "bad.glsl").write_text("#version 330\n#ifdef VERTEX_SHADER\nvoid main() { x; }\n"
                                       "#endif\n")  # fmt: skip
    with pytest.raises(ShaderError, match=r"bad\.glsl:3"):
        ShaderLibrary(target.ctx, tmp_path).get("bad")


def _touch_later(path) -> None:
    """Move the file's mtime forward (edits within one timestamp tick must still count)."""
    import os

    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10_000_000))


def test_a_lower_render_scale_keeps_the_web_s_light(target):
    """The governor lowers the render scale under load: lines drawn one pixel wide at a third
    of the resolution cover three output pixels once upscaled, so their light is scaled down to
    match, and the web does not brighten and blow out (as it did, by 40 %, at scale 0.3)."""
    look = load_settings("default").look
    scene, _ = steady_scene(look)
    renderer = Renderer(target.ctx, look, False, PassTimes(target.ctx))
    means = {}
    for scale in (1.0, 0.3):
        renderer.draw(target.fbo, SIZE, scene, OVERLAY, Camera(0.0), time=1.0, scale=scale)
        image = read_rgb(target.fbo, SIZE).astype(np.float32)
        means[scale] = image[: SIZE[1] * 2 // 3, SIZE[0] // 4 : SIZE[0] * 3 // 4].mean()
    renderer.release()
    assert means[0.3] == pytest.approx(means[1.0], rel=0.12)


def test_at_render_scale_1_each_pixel_of_the_light_reaches_its_own_pixel(target):
    """At scale 1 (videos, posters) the upscale pass reads the light texel for texel, not
    filtered (a CPU renderer's bilinear read costs four): single lit pixels land where they
    were drawn, each alone, at the even tone of their light."""
    from visualizer.render.layers.bloom import EXPOSURE, Bloom

    shaders = ShaderLibrary(target.ctx)
    bloom = Bloom(shaders, PassTimes(target.ctx))
    dots = [(0, 0), (17, 5), (240, 135), (SIZE[0] - 1, SIZE[1] - 1)]  # (x, y) from the bottom
    scene = bloom.begin(SIZE)
    for x, y in dots:
        scene.clear(1.0, 1.0, 1.0, 1.0, viewport=(x, y, 1, 1))
    bloom.finish(target.fbo, 0.0, lambda: None, 0.0, 0.0)
    image = read_rgb(target.fbo, SIZE)[::-1, :, 0]  # rows from the bottom, as GL counts
    bloom.release()
    shaders.release()
    lit = sorted((int(x), int(y)) for y, x in zip(*np.nonzero(image), strict=True))
    assert lit == sorted(dots)
    assert image[dots[2][1], dots[2][0]] == round(255 * (1 - np.exp(-EXPOSURE)))


@pytest.mark.parametrize("split", [0.0, 0.01])
def test_the_light_is_finished_alike_at_every_render_scale(target, split):
    """Below scale 1 the light is finished (tone map, the answer's darkened band) at the render
    scale, by the composite pass; at scale 1 by the upscale pass itself. An even light must
    come out the same on both paths: tone-mapped as 1 - exp(-light × exposure), and darkened
    by the band's shade below its top."""
    from visualizer.render.layers.bloom import EXPOSURE, Bloom

    shaders = ShaderLibrary(target.ctx)
    bloom = Bloom(shaders, PassTimes(target.ctx))
    light, top, shade = 0.3, 0.25, 0.5
    out = {}
    for scale in (1.0, 0.5):
        scene = bloom.begin((round(SIZE[0] * scale), round(SIZE[1] * scale)))
        scene.clear(light, light, light, 1.0)
        bloom.finish(target.fbo, 0.0, lambda: None, top, shade, split)
        out[scale] = read_rgb(target.fbo, SIZE).astype(np.float32)
    bloom.release()
    shaders.release()
    expected = 255 * (1 - np.exp(-light * EXPOSURE))
    edge = round(SIZE[1] * (1 - top))  # the band's top, in rows from the top
    for image in out.values():
        assert image[: edge - 20, 20:-20].mean() == pytest.approx(expected, abs=1.5)
        assert image[edge + 20 :, 20:-20].mean() == pytest.approx(expected * (1 - shade), abs=1.5)
    assert np.abs(out[1.0] - out[0.5])[:, 20:-20].max() <= 3


def test_the_colour_split_moves_red_and_blue_alike_at_every_render_scale(target):
    """The glitch's colour split: red shows the light `split` of the width to its right, blue
    to its left, green in place. Below scale 1 the composite splits at the render scale (the
    full-size pass stays a plain read); at scale 1 the upscale does: the same places."""
    from visualizer.render.layers.bloom import Bloom

    shaders = ShaderLibrary(target.ctx)
    bloom = Bloom(shaders, PassTimes(target.ctx))
    split, column = 0.05, 0.5  # a bright column at the middle of the width
    peaks = {}
    for scale in (1.0, 0.5):
        size = (round(SIZE[0] * scale), round(SIZE[1] * scale))
        scene = bloom.begin(size)
        scene.clear(1.0, 1.0, 1.0, 1.0, viewport=(round(size[0] * column) - 1, 0, 2, size[1]))
        bloom.finish(target.fbo, 0.0, lambda: None, 0.0, 0.0, split)
        profile = read_rgb(target.fbo, SIZE).astype(np.float32).mean(axis=0)  # [x, rgb]
        peaks[scale] = [float(np.average(np.arange(SIZE[0]), weights=profile[:, c] ** 4))
                        for c in range(3)]  # fmt: skip
    bloom.release()
    shaders.release()
    shift = split * SIZE[0]  # 24 pixels
    for red, green, blue in peaks.values():
        assert green == pytest.approx(SIZE[0] * column, abs=1.5)
        assert red == pytest.approx(green - shift, abs=1.5)
        assert blue == pytest.approx(green + shift, abs=1.5)


def test_lines_drawn_smooth_keep_their_light_without_the_staircase(target):
    """Below render scale 1 the attention arcs are drawn through smooth_lines: a shallow line
    drawn plain is a staircase of whole pixels (one level of light), which a low render scale
    magnifies into dots; drawn smooth its light is spread by coverage over the pixels it partly
    crosses, and adds up to about the same; switched off (scale 1) it is drawn plain."""
    from visualizer.render.layers import smooth_lines

    ctx = target.ctx
    program = ctx.program(
        vertex_shader="#version 330\nin vec2 p;\nvoid main() { gl_Position = vec4(p, 0, 1); }",
        fragment_shader="#version 330\nout vec4 c;\nvoid main() { c = vec4(0.5, 0.5, 0.5, 1); }",
    )
    ends = ctx.buffer(np.array([-0.9, -0.5, 0.9, -0.3], np.float32).tobytes())
    line = ctx.vertex_array(program, [(ends, "2f", "p")])
    ctx.enable(moderngl.BLEND)
    ctx.blend_func = moderngl.ONE, moderngl.ONE  # the scene's additive light
    images = {}
    for mode in ("plain", "off", "smooth"):  # "off": smooth_lines(ctx, False), at render scale 1
        target.fbo.use()
        target.fbo.clear(0.0, 0.0, 0.0, 1.0)
        if mode == "plain":
            line.render(moderngl.LINES)
        else:
            with smooth_lines(ctx, mode == "smooth"):
                line.render(moderngl.LINES)
        images[mode] = read_rgb(target.fbo, SIZE)[..., 0].astype(np.float32)
    lit = {mode: image[image > 0] for mode, image in images.items()}
    assert set(lit["plain"]) == {128.0}  # every pixel whole or nothing: the staircase
    partial = (lit["smooth"] > 8) & (lit["smooth"] < 120)
    assert partial.mean() > 0.3
    assert lit["smooth"].sum() == pytest.approx(lit["plain"].sum(), rel=0.25)
    assert (images["off"] == images["plain"]).all()
    line.release()
    ends.release()
    program.release()



def test_a_target_stored_as_a_window_shows_the_same_picture():
    """A window-like target and the upscale's source are stored BGRA (window_texture), which
    llvmpipe's linear rasterizer copies and filters without shading each pixel. Its picture
    must be the shaded one's: the same noise, upscaled from half size, differs by no more than
    its 8-bit filter weights round (a plain texture read: written `vec4(c.rgb, 1)`, that path
    swapped red and blue on every tile it drew)."""
    from visualizer.render.layers.bloom import Bloom

    light = np.random.default_rng(3).random((SIZE[1] // 2, SIZE[0] // 2, 4)).astype(np.float32)
    images = []
    for like_a_window in (False, True):
        target = HeadlessTarget(SIZE, like_a_window=like_a_window)
        shaders = ShaderLibrary(target.ctx)
        bloom = Bloom(shaders, PassTimes(target.ctx))
        bloom.begin((SIZE[0] // 2, SIZE[1] // 2))
        noise = target.ctx.texture(bloom.size, 4, light.tobytes(), dtype="f4")
        target.ctx.copy_framebuffer(bloom._fbos[0], target.ctx.framebuffer([noise]))
        bloom.finish(target.fbo, 0.0, lambda: None, 0.0, 0.0)
        images.append(read_rgb(target.fbo, SIZE).astype(np.int16))
        bloom.release()
        shaders.release()
        target.close()
    difference = np.abs(images[0] - images[1])
    assert images[0].std() > 20  # the noise came through
    assert difference.max() <= 3 and difference.mean() < 1


def test_a_whole_frame_is_the_same_on_a_target_stored_as_a_window():
    """Every pass that draws onto the target (the web's upscale, its text and panels, the
    chrome) gives the same frame on a window-order target as on an RGBA one."""
    look = load_settings("default").look
    scene, _ = steady_scene(look)
    images = []
    for like_a_window in (False, True):
        target = HeadlessTarget(SIZE, like_a_window=like_a_window)
        renderer = Renderer(target.ctx, look, True, PassTimes(target.ctx))
        renderer.draw(target.fbo, SIZE, scene, OVERLAY, Camera(0.0), time=1.0, scale=0.5)
        images.append(read_rgb(target.fbo, SIZE).astype(np.int16))
        renderer.release()
        target.close()
    difference = np.abs(images[0] - images[1])
    assert images[0].std() > 10
    assert difference.max() <= 3 and difference.mean() < 0.5


def test_the_far_side_of_the_web_is_dimmer_than_the_near(target):
    """Atmospheric perspective (shaders/lib/depth.glsl): the same node, of the same level, is
    drawn brighter at the front of its ring than at the back (the camera turned half round).
    Without the fade the two peaks are within 3 % (sRGB 8-bit, the sprite's size by depth)."""
    look = load_settings(None, {"look": {"nodes_per_layer": 8, "glow": 0, "link_fanout": 0,
                                         "arcs_per_layer": 0}}).look  # fmt: skip
    renderer = Renderer(target.ctx, look, limit_flashes=False, passes=PassTimes(target.ctx))
    scene, _ = steady_scene(look)
    rows, nodes = scene.level.shape
    peaks = []
    for yaw in (0.0, np.pi):  # node 2 of row 3 faces the camera, then faces away
        camera = Camera(0.0)
        camera.yaw = yaw
        renderer.draw(target.fbo, SIZE, scene, OVERLAY, camera, time=1.0)
        image = read_rgb(target.fbo, SIZE).astype(float).sum(-1)
        node = np.append(layout.node_positions(rows, nodes)[3, 2], 1.0)
        clip = camera.matrix(SIZE[0] / SIZE[1]) @ node
        x = round((clip[0] / clip[3] + 1) / 2 * SIZE[0])
        y = round((1 - clip[1] / clip[3]) / 2 * SIZE[1])
        peaks.append(image[y - 2 : y + 3, x - 2 : x + 3].max())
    renderer.release()
    assert peaks[0] >= 1.15 * peaks[1], peaks


def test_lines_are_two_pixels_wide_at_1080p_and_in_proportion():
    """Links and arcs survive H.264 (layers.set_lines): 2 pixels wide in a 1080p frame, 1 in a
    540p one, so the share of the picture they light is the same at both sizes (with
    one-pixel lines the 1080p frame's share was half: 0.51 of the 540p frame's). Drawn without
    the backdrop (transparent), tiny nodes, no bloom: what is lit is the links."""
    look = load_settings(None, {"look": {"node_size": 0.01, "glow": 0, "arcs_per_layer": 0,
                                         "nodes_per_layer": 8, "link_fanout": 1}}).look
    scene, _ = steady_scene(look)
    shares = []
    for size in ((960, 540), (1920, 1080)):
        target = HeadlessTarget(size)
        renderer = Renderer(target.ctx, look, limit_flashes=False, passes=PassTimes(target.ctx))
        try:
            renderer.draw(target.fbo, size, scene, OVERLAY, Camera(0.0), time=1.0,
                          transparent=True)  # fmt: skip
            lit = read_rgb(target.fbo, size).max(-1) > 2
        finally:
            renderer.release()
            target.close()
        w, h = size
        shares.append(lit[round(0.05 * h) : h // 2, w // 5 : w // 2].mean())  # the tower
    assert 0.9 <= shares[1] / shares[0] <= 1.1, shares


def test_a_token_s_arrival_climbs_the_tower(target):
    """Each token's arrival is a band of light climbing the layers over 0.4 s (12 frames at
    30 fps, so it survives a video): 0.1 s after it the band is low in the tower, 0.3 s after
    higher; by 0.5 s it has gone. Measured as the rows of the picture it brightens."""
    look = load_settings(None, {"look": {"glow": 0, "arcs_per_layer": 0}}).look
    renderer = Renderer(target.ctx, look, limit_flashes=False, passes=PassTimes(target.ctx))
    scene, _ = steady_scene(look)
    images = {}
    for ages in ((), (0.1,), (0.3,), (0.5,)):
        scene.ages = ages
        images[ages] = render(target, renderer, scene).sum(-1)
    renderer.release()

    def band(ages) -> float:
        """Where the wave brightens the picture: the mean row, weighted by the brightening."""
        gain = np.clip(images[ages] - images[()], 0, None).sum(1)
        return float((np.arange(len(gain)) * gain).sum() / max(gain.sum(), 1e-9))

    assert band((0.3,)) < band((0.1,)) - 0.15 * SIZE[1]  # higher up the picture: rows above
    assert np.abs(images[(0.5,)] - images[()]).max() == 0


def test_attention_travels_out_along_the_arcs(target):
    """A pulse of light runs along each arc, from the tower to the token attended to, over
    0.3 s after a token arrives: at 0.05 s it brightens the arcs near the tower, at 0.25 s
    near the path below it."""
    look = load_settings(None, {"look": {"glow": 0, "node_size": 0.01, "link_fanout": 0}}).look
    renderer = Renderer(target.ctx, look, limit_flashes=False, passes=PassTimes(target.ctx))
    scene, _ = steady_scene(look)
    images = {}
    for ages in ((), (0.05,), (0.25,)):
        scene.ages = ages
        images[ages] = render(target, renderer, scene).sum(-1)
    renderer.release()
    rows = []
    for ages in ((0.05,), (0.25,)):
        gain = np.clip(images[ages] - images[()], 0, None).sum(1)
        assert gain.sum() > 0, ages
        rows.append(float((np.arange(len(gain)) * gain).sum() / gain.sum()))
    assert rows[1] > rows[0] + 0.05 * SIZE[1], rows  # lower in the picture: out at the path
