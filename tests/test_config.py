import re

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from visualizer.config import (
    KEYS,
    PRESET_DIR,
    ConfigError,
    Settings,
    load_settings,
    parse_keys,
)


def test_defaults_and_shipped_presets_load():
    assert load_settings() == Settings()
    assert load_settings("default").generation.max_tokens >= 1
    for path in PRESET_DIR.glob("*.toml"):
        load_settings(path.stem)  # every shipped preset is valid
    assert load_settings("architecture").look.scene == "architecture"
    minimal = load_settings("minimal")
    assert minimal.look.text_size > Settings().look.text_size  # large text for a talk


def test_overrides_win_over_the_preset():
    s = load_settings("default", {"generation": {"temperature": 0, "seed": 3}})
    assert s.generation.temperature == 0.0 and s.generation.seed == 3


@pytest.mark.parametrize("text,needle", [
    ("[generation]\ntemprature = 1\n", "unknown key 'generation.temprature'"),
    ("[generation]\ntop_k = 'many'\n", "generation.top_k must be int"),
    ("[generation]\ntop_p = 2.0\n", "generation.top_p must be"),
    ("[nonsense]\nx = 1\n", "unknown key 'nonsense'"),
    ("generation = 3\n", "'generation' must be a table"),
    ("[model\n", "not valid TOML"),
    ('[look]\ncold = "blue"\n', 'look.cold must be a colour "#rrggbb"'),
    ('[look]\nhue = "rainbow"\n', "look.hue must be"),
    ("[look]\nnodes_per_layer = 0\n", "look.nodes_per_layer must be"),
    ("[window]\nmin_scale = 0.9\nmax_scale = 0.5\n", "window.min_scale must be"),
    ('[record]\nspeed = "warp"\n', "record.speed must be"),
    ('[record]\npix_fmt = "yuv444p"\n',
     'record.pix_fmt must be one of "yuv420p" | "yuv420p10le", got \'yuv444p\''),
    ("[record]\nfps = 0\n", "record.fps must be"),
    ('[sound]\nvolume = 2.0\n', "sound.volume must be"),
    ('[look]\nscene = "tower"\n', "look.scene must be"),
    ("[safety]\nflash_limit = 1\n", "safety.flash_limit must be bool"),
    ('[kiosk]\nexit_keys = "ctrl+alt+delete"\n',
     'kiosk.exit_keys must be modifiers and a key, like "ctrl+shift+q", got \'ctrl+alt+delete\''),
    ('[kiosk]\nprompts = ["one", " "]\n', "kiosk.prompts[1] must be a text that is not blank"),
    ('[kiosk]\nscenes = ["web", "tower"]\n',
     'kiosk.scenes[1] must be one of "web" | "architecture"'),
])  # fmt: skip
def test_bad_presets_name_the_file_and_key(tmp_path, text, needle):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_settings(str(path))
    assert str(path) in str(err.value) and needle in str(err.value)


def test_missing_preset_lists_the_available_ones():
    with pytest.raises(ConfigError, match="no such preset.*default"):
        load_settings("nope")


def test_a_bad_key_is_named_with_its_line(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text('# a comment\n[look]\nglow = 0.5\n\n[window]\nwidth = 1280\ntarget_fps = 0\n')
    with pytest.raises(ConfigError, match=rf"^{path}:7: window.target_fps must be"):
        load_settings(str(path))
    path.write_text("[look]\nglo = 0.5\n")
    with pytest.raises(ConfigError, match=rf"^{path}:2: unknown key 'look.glo'"):
        load_settings(str(path))


@pytest.mark.parametrize("gen, key", [
    ({"temperature": 1e-40}, "generation.temperature"),
    ({"temperature": float("inf")}, "generation.temperature"),
    ({"top_p": float("nan")}, "generation.top_p"),
    ({"context": 3}, "generation.context"),
    ({"max_tokens": True}, "generation.max_tokens"),
    ({"max_tokens": 10**9}, "generation.max_tokens"),
])  # fmt: skip
def test_the_flags_the_preset_and_the_wire_refuse_the_same_settings(tmp_path, gen, key):
    """One type, one set of bounds: a setting refused on the command line is refused in a
    preset and in a client's message, each in one line naming it."""
    import msgpack

    from visualizer import wire

    with pytest.raises(ConfigError, match=rf"^command line: {key}"):
        load_settings("default", {"generation": gen})
    with pytest.raises(wire.WireError, match=rf"^generate: gen\.{key.split('.')[1]}"):
        wire.unpack([msgpack.packb({"v": wire.WIRE_VERSION, "type": "generate", "request": 1,
                                    "prompt": "x", "gen": gen})], 1 << 20)  # fmt: skip
    if all(isinstance(v, int) or abs(v) < 1e300 for v in gen.values()):  # TOML writes these
        path = tmp_path / "p.toml"
        path.write_text("[generation]\n" + "".join(f"{k} = {str(v).lower()}\n"
                                                   for k, v in gen.items()))  # fmt: skip
        with pytest.raises(ConfigError, match=rf"{path}:2: {key}"):
            load_settings(str(path))


def test_ints_are_taken_where_floats_are_meant():
    settings = load_settings("default", {"generation": {"temperature": 1, "top_p": 1}})
    assert settings.generation.temperature == 1.0 and type(settings.generation.top_p) is float


KEY_PARTS = ("ctrl", " Shift", "ſhift", "ALT ", "", " ", "\t", "q", "Q", "1", "İ", "+", "de")


@given(st.lists(st.sampled_from(KEY_PARTS), max_size=5).map("+".join) | st.text(max_size=8))
@example(" Ctrl + Shift + Q ")
@example("ſhift+q")  # "ſ" is "s" to a case-insensitive regex, not to str.lower()
@example("İ")  # one character, two in lower case
@example("ctrl++q")
def test_the_exit_keys_pattern_takes_what_parse_keys_takes(text):
    """kiosk.exit_keys is checked by its pattern (KEYS) when the preset is read; the kiosk then
    locks its controls with parse_keys(exit_keys), which must not be None (an unlocked kiosk)."""
    assert (re.search(KEYS, text) is not None) == (parse_keys(text) is not None), repr(text)
