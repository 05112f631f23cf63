import pytest

from visualizer.config import ConfigError, Settings, load_settings


def test_defaults_and_shipped_presets_load():
    assert load_settings() == Settings()
    assert load_settings("default").generation.max_tokens >= 1


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
    ("[record]\nfps = 0\n", "record.fps must be"),
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
