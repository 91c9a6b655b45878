import pytest

from pada_lite.config import ConfigError, RunConfig, lite, override, paper, preset


def test_presets_roundtrip_through_dict():
    for config in (lite(), paper()):
        assert RunConfig.from_dict(config.to_dict()) == config


def test_paper_preset_matches_reference_run():
    c = paper()
    assert (c.space.channels, c.space.cells_per_stage, len(c.space.ops)) == (16, 5, 5)
    assert (c.train.epochs, c.train.batch_size, c.train.lr, c.train.weight_decay, c.train.grad_clip) == \
        (250, 256, 0.05, 2.5e-4, 5.0)
    assert c.data.dataset == "cifar10" and c.data.augment and c.data.train_size is None


@pytest.mark.parametrize("item, message", [
    ("train.tau=1.5", "outside"), ("train.tau=-0.1", "outside"), ("train.epochs=0", "epochs"),
    ("train.path_sampler=magic", "path_sampler"), ("data.dataset=mnist", "dataset"), ("train.nope=1", "unknown field"),
    ("epochs=3", "section.field"), ("data.train_size=-5", "train_size")])
def test_invalid_values_are_named(item, message):
    with pytest.raises(ConfigError, match=message):
        override(lite(), [item])


def test_override_parses_json_values():
    c = override(lite(), ["train.epochs=3", "space.ops=[\"none\", \"nor_conv_3x3\"]", "train.tau=linear"])
    assert c.train.epochs == 3 and c.space.ops == ("none", "nor_conv_3x3") and c.train.tau == "linear"


def test_unknown_preset_and_section():
    with pytest.raises(ConfigError, match="preset"):
        preset("huge")
    with pytest.raises(ConfigError, match="section"):
        RunConfig.from_dict({"model": {}})


def test_override_converts_through_the_field_type():
    c = override(lite(), ["data.train_size=none", "train.nesterov=true", "train.lr=1e-3", "train.tau=0.5",
                          "train.device=cpu"])
    assert c.data.train_size is None and c.train.nesterov is True and c.train.lr == 0.001 and c.train.tau == 0.5
    assert isinstance(override(lite(), ["train.lr=1"]).train.lr, float)


def test_override_parts_reaches_run_sections_and_plain_parts_with_typed_values():
    from pada_lite.config import ConfigError, lite, override_parts
    from pada_lite.mobilenet_search import preset
    run, search = preset("lite")
    parts = override_parts({"search": run, "evolution": search},
                           ["search.train.epochs=1", "evolution.population=6", "evolution.flops_limit=1.5"])
    assert parts["search"].train.epochs == 1 and parts["search"].space == run.space
    assert parts["evolution"].population == 6 and parts["evolution"].flops_limit == 1.5
    assert (run.train.epochs, search.population) != (1, 6)  # the preset itself is left as it was
    with pytest.raises(ConfigError, match="is not an integer"):
        override_parts({"evolution": search}, ["evolution.population=six"])
    with pytest.raises(ConfigError, match="with a part of search, evolution"):
        override_parts({"search": lite(), "evolution": search}, ["network.channels=4"])
    with pytest.raises(ConfigError, match="unknown field 'nope' in section 'evolution'"):
        override_parts({"evolution": search}, ["evolution.nope=1"])


def test_lite_preset_trains_the_ground_truths_own_networks_and_v1_is_kept_apart():
    from pada_lite.config import lite_v1
    from pada_lite.experiments import v2_base_config
    from pada_lite.standalone import StandaloneConfig
    truth, config = StandaloneConfig.lite(), lite()
    assert (config.space.channels, config.space.cells_per_stage) == (truth.channels, truth.cells_per_stage)
    assert config.data == truth.data_config() and (config.rank.split, config.rank.images) == ("valid", 10_000)
    v2 = v2_base_config()
    assert (v2.space, v2.data, v2.rank) == (config.space, config.data, config.rank) and v2.train.epochs == 100
    assert (lite_v1().space.channels, lite_v1().space.cells_per_stage) == (8, 1)  # the v1 runs' own preset
