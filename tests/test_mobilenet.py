"""The MobileNet (ProxylessNAS) space: FLOPs table vs counted forward passes, a hand-derived reference arch, the
skip rule, FLOPs-limited search, BN recalibration, the seeded ImageFolder loader and exact supernet resume."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from pada_lite.config import DataConfig, RunConfig, TrainConfig
from pada_lite.data import ImageFolderLoader, imagenet_folder
from pada_lite.evaluation import recalibrate_bn
from pada_lite.search import evolutionary_search, random_search
from pada_lite.spaces import ArchError, build_supernet, make_path_sampler
from pada_lite.spaces.mobilenet import (
    CHOICES,
    FlopsRangePathSampler,
    FlopsTable,
    MobileNetArchSpace,
    MobileNetNetwork,
    MobileNetSupernet,
    MobileNetSupernetConfig,
    counted_macs,
    str_to_arch,
)
from pada_lite.training import Trainer
from tests.conftest import Interrupt, kill_after_steps

TINY_SPACE = dict(width_mult=0.25, input_size=16, in_channels=1, num_classes=10, stem_stride=1,
                  stage_blocks=(1, 2, 1), stage_widths=(16, 24, 32), stage_strides=(2, 1, 2), head_channels=64)


def test_default_space_is_proxylessnas_layout():
    config = MobileNetSupernetConfig()
    allowed = config.allowed()
    assert config.num_blocks == 21 and allowed.shape == (21, len(CHOICES)) and len(CHOICES) == 7
    first_blocks = [0, 4, 8, 12, 16, 20]  # a stage's first block changes the width: no skip there
    assert [b for b in range(21) if not allowed[b, CHOICES.index("skip")]] == first_blocks
    assert bool(allowed[:, :6].all())


def test_width_multiplier_can_allow_skip_where_widths_meet():
    """At width 0.35, stages of 80 and 96 both round to 32 channels, so the stride-1 block between them may skip."""
    config = MobileNetSupernetConfig(width_mult=0.35)
    c_in, c_out, stride = config.blocks()[12]
    assert (c_in, c_out, stride) == (32, 32, 1) and bool(config.allowed()[12, CHOICES.index("skip")])


@pytest.mark.parametrize("config", [MobileNetSupernetConfig(input_size=64, width_mult=0.5),
                                    MobileNetSupernetConfig(**TINY_SPACE)], ids=["imagenet-64px", "tiny"])
def test_lookup_table_equals_counted_forward_pass(config, one_thread):
    """The table's MACs equal torch.utils.flop_counter's count (2 FLOPs per MAC) of the path, on random archs."""
    table, space = FlopsTable(config), MobileNetArchSpace(config)
    model = MobileNetSupernet(config).eval()
    x = torch.randn(2, config.in_channels, config.input_size, config.input_size)
    rng = np.random.default_rng(0)
    archs = [space.random(rng) for _ in range(2)] + [("k7_e6",) * config.num_blocks]
    for arch in archs:
        assert table.macs(arch) == counted_macs(model, x, arch)
    low, high = table.bounds()
    assert low * 1e6 <= min(table.macs(a) for a in archs) <= max(table.macs(a) for a in archs) <= high * 1e6


def test_reference_arch_flops_at_224_derived_by_hand():
    """All 21 blocks MBConv k3 e6 at width 1.0, 224 px: 472.6208 M MACs, derived layer by layer.

    conv(H_out, c_in, c_out, k, groups) = H_out² · c_out · (c_in / groups) · k². An MBConv k3 e6 block from c_in to
    c_out on H_in x H_in with stride s: expand 1x1 H_in²·c_in·6c_in + depthwise 3x3 H_out²·6c_in·9 + project 1x1
    H_out²·6c_in·c_out.
    - stem 3x3 s2, 3 -> 32 at 112²: 112²·32·3·9 = 10,838,016
    - MBConv1 3x3, 32 -> 16 at 112²: depthwise 112²·32·9 + project 112²·32·16 = 10,035,200
    - stage 24 (4 blocks, 112 -> 56): 106,423,296; stage 40 (56 -> 28): 66,608,640; stage 80 (28 -> 14): 59,411,520;
      stage 96 (14, stride 1): 85,481,088; stage 192 (14 -> 7): 83,063,232; stage 320 (1 block at 7): 29,409,408
    - head 1x1 320 -> 1280 at 7²: 20,070,400; classifier 1280 -> 1000: 1,280,000
    """
    def mbconv(h_in, c_in, c_out, stride, expansion=6, kernel=3):
        h_out, hidden = h_in // stride, c_in * expansion
        expand = h_in * h_in * c_in * hidden if expansion != 1 else 0
        return expand + h_out * h_out * hidden * kernel * kernel + h_out * h_out * hidden * c_out

    total = 112 * 112 * 32 * 3 * 9 + mbconv(112, 32, 16, 1, expansion=1)
    h, c = 112, 16
    stage_macs = []
    for width, blocks, stride in [(24, 4, 2), (40, 4, 2), (80, 4, 2), (96, 4, 1), (192, 4, 2), (320, 1, 1)]:
        macs = 0
        for b in range(blocks):
            macs += mbconv(h, c, width, stride if b == 0 else 1)
            h, c = (h // stride if b == 0 else h), width
        stage_macs.append(macs)
    assert stage_macs == [106_423_296, 66_608_640, 59_411_520, 85_481_088, 83_063_232, 29_409_408]
    total += sum(stage_macs) + 7 * 7 * 320 * 1280 + 1280 * 1000
    assert total == 472_620_800
    assert FlopsTable(MobileNetSupernetConfig()).macs(("k3_e6",) * 21) == total


def test_invalid_archs_are_refused():
    config = MobileNetSupernetConfig(**TINY_SPACE)
    with pytest.raises(ArchError, match="cannot skip"):
        str_to_arch("-".join(["skip"] + ["k3_e3"] * (config.num_blocks - 1)), config)
    with pytest.raises(ArchError, match="unknown choice"):
        str_to_arch("-".join(["k9_e3"] * config.num_blocks), config)
    with pytest.raises(ArchError, match="choice blocks"):
        MobileNetSupernet(config)(torch.zeros(1, 1, 16, 16), ("k3_e3",))


def test_standalone_network_holds_only_its_choices():
    config = MobileNetSupernetConfig(**TINY_SPACE)
    arch = ("k5_e3", "k3_e6", "skip", "k7_e6")
    net = MobileNetNetwork(arch, config)
    assert [list(block.choices) for block in net.net.blocks] == [[c] for c in arch]
    assert net(torch.randn(2, 1, 16, 16)).shape == (2, 10)


@pytest.mark.parametrize("search", ["evolution", "random"])
def test_search_never_returns_an_arch_over_the_limit(search):
    """Fitness = FLOPs pulls the search towards the biggest archs: every evaluated arch must stay within the limit."""
    config = MobileNetSupernetConfig()
    limit = 330.0
    space = MobileNetArchSpace(config, flops_limit=limit)
    fitness = lambda archs: np.array([space.table.mflops(a) for a in archs])  # noqa: E731
    if search == "evolution":
        result = evolutionary_search(fitness, budget=200, population=50, parents=10, mutation_prob=0.1, seed=1,
                                     arch_space=space)
    else:
        result = random_search(fitness, budget=100, seed=1, arch_space=space)
    assert all(space.table.mflops(a) <= limit for a in result.evaluated)
    assert space.table.mflops(result.best) <= limit and result.best_fitness > 300  # it did climb towards the limit
    unlimited = MobileNetArchSpace(config)
    assert max(unlimited.table.mflops(unlimited.random(np.random.default_rng(0))) for _ in range(50)) > limit


def test_flops_range_sampler_draws_paths_in_range():
    config = MobileNetSupernetConfig(train_flops_range=(290, 360), train_flops_step=10)
    sampler = make_path_sampler(TrainConfig(), config, torch.Generator().manual_seed(0))
    assert isinstance(sampler, FlopsRangePathSampler) and len(sampler.bins) == 7
    flops = [sampler.table.mflops(sampler.sample()[0][0]) for _ in range(40)]
    assert all(290 <= f <= 360 for f in flops) and sampler.misses == 0
    assert np.std(flops) > 10  # spread over the bins, not stuck in one


def test_recalibrate_bn_gives_the_path_statistics(one_thread):
    config = MobileNetSupernetConfig(**TINY_SPACE)
    model = MobileNetSupernet(config)
    arch = ("k3_e3", "k5_e6", "k3_e3", "k7_e3")
    batches = [torch.randn(8, 1, 16, 16) for _ in range(3)]
    for _ in range(2):  # training other paths pollutes the statistics; recalibration removes that
        model.train()(torch.randn(8, 1, 16, 16) * 3 + 1, ("k7_e6",) * 4)
    recalibrate_bn(model, arch, batches)
    assert not model.training
    stem_conv, stem_bn = model.stem[0], model.stem[1]
    with torch.no_grad():
        expected = torch.stack([stem_conv(x).mean((0, 2, 3)) for x in batches]).mean(0)
    torch.testing.assert_close(stem_bn.running_mean, expected)
    assert stem_bn.momentum == 0.1
    first = [p.clone() for p in model.state_dict().values()]
    recalibrate_bn(model, arch, batches)
    assert all(torch.equal(a, b) for a, b in zip(first, model.state_dict().values()))


def test_run_config_round_trips_the_space():
    config = RunConfig(space=MobileNetSupernetConfig(width_mult=0.35, train_flops_range=(1.0, 2.0)))
    again = RunConfig.from_dict(config.to_dict())
    assert again == config and isinstance(again.space, MobileNetSupernetConfig)
    assert isinstance(build_supernet(again.space), MobileNetSupernet)


def _tiny_run(**train) -> RunConfig:
    space = MobileNetSupernetConfig(**TINY_SPACE, train_flops_range=(0.3, 0.5), train_flops_step=0.05)
    return RunConfig(name="tiny-mobilenet", space=space,
                     data=DataConfig(image_size=16, train_size=192, test_size=64),
                     train=TrainConfig(epochs=2, batch_size=32, progress=False, device="cpu",
                                       path_sampler="importance", pa_scope="edge", data_sampler="importance", **train))


def test_supernet_trains_through_the_trainer_and_resumes_exactly(tmp_path, one_thread):
    """PA per block + DA + FLOPs-range sampling; a run killed mid-epoch resumes to the same weights bit for bit."""
    config = _tiny_run(checkpoint_every_steps=2)
    table = FlopsTable(config.space)
    assert table.bounds()[0] < 0.3 < 0.5 < table.bounds()[1]  # the range does restrict the paths
    reference = Trainer(config, tmp_path / "a")
    reference.run()
    assert reference.path_sampler.inner.probabilities().shape == (config.space.num_blocks, 7)
    assert not torch.equal(reference.path_sampler.probabilities()[0],  # PA scored the blocks: no longer uniform
                           torch.full((7,), 1 / reference.path_sampler.inner.allowed[0].sum().item(),
                                      dtype=torch.float64) * reference.path_sampler.inner.allowed[0])

    killed = Trainer(config, tmp_path / "b")
    kill_after_steps(killed, 9)  # epoch 1, step 3: the last checkpoint is at step 2 of epoch 1
    with pytest.raises(Interrupt):
        killed.run()
    resumed = Trainer(config, tmp_path / "b")
    assert resumed.try_resume() and (resumed.epoch, resumed.step) == (1, 2)
    resumed.run()
    for (name, a), b in zip(reference.model.state_dict().items(), resumed.model.state_dict().values()):
        assert torch.equal(a, b), name
    assert reference.history[-1]["train_loss"] == resumed.history[-1]["train_loss"]


@pytest.fixture
def image_folder(tmp_path):
    """A fake ImageFolder: train/ and val/ with 3 classes of random JPEG and PNG images of varied sizes."""
    from PIL import Image
    rng = np.random.default_rng(0)
    for split, count in (("train", 7), ("val", 3)):
        for label in ("cat", "dog", "fox"):
            folder = tmp_path / split / label
            folder.mkdir(parents=True)
            for i in range(count):
                pixels = rng.integers(0, 256, (20 + 3 * i, 28 - i, 3), dtype=np.uint8)
                Image.fromarray(pixels).save(folder / f"{i}.{'png' if i % 2 else 'jpg'}")
    return tmp_path


def test_image_folder_batches_resume_exactly(image_folder):
    """An epoch read from batch 2 on equals the tail of the full epoch, with worker processes or without."""
    data = imagenet_folder(image_folder, "train", image_size=16, seed=3)
    assert data.classes == ["cat", "dog", "fox"] and len(data) == 21
    loader = ImageFolderLoader(data, batch_size=4, seed=3, workers=0)
    full = list(loader.epoch(1))
    assert len(loader) == len(full) == 5 and full[0][0].shape == (4, 3, 16, 16)   # drop_last in training
    tail = list(loader.epoch(1, start=2))
    for (x, y, i), (x2, y2, i2) in zip(full[2:], tail, strict=True):
        assert torch.equal(x, x2) and torch.equal(y, y2) and torch.equal(i, i2)
    other_epoch = list(loader.epoch(2))
    assert not torch.equal(torch.cat([b[2] for b in full]), torch.cat([b[2] for b in other_epoch]))
    with_workers = list(ImageFolderLoader(data, batch_size=4, seed=3, workers=2).epoch(1))
    assert all(torch.equal(a[0], b[0]) for a, b in zip(full, with_workers, strict=True))
    val = list(ImageFolderLoader(imagenet_folder(image_folder, "val", 16), 4, workers=0, train=False).epoch(0))
    assert sum(len(b[1]) for b in val) == 9 and abs(float(val[0][0].mean())) < 3


def test_image_folder_errors_name_the_fix(tmp_path):
    from pada_lite.data import DataError
    with pytest.raises(DataError, match="does not exist"):
        imagenet_folder(tmp_path, "train")
    (tmp_path / "train" / "cat").mkdir(parents=True)
    with pytest.raises(DataError, match="no images"):
        imagenet_folder(tmp_path, "train")


def test_lite_preset_space_sizes():
    from pada_lite.mobilenet_search import preset
    run, search = preset("lite")
    low, high = FlopsTable(run.space).bounds()
    assert low < search.flops_limit < high and run.space.num_blocks == 11
    assert dataclasses.replace(run.space) == RunConfig.from_dict(run.to_dict()).space


def test_image_folder_retrain_resumes_exactly(image_folder, tmp_path, one_thread):
    """Retraining an arch on a (fake) ImageFolder, killed after epoch 1 and resumed, ends with the same weights."""
    from pada_lite.mobilenet_search import EpochBatches, retrain_arch, retrain_preset
    from pada_lite.retrain import Retrainer
    space = MobileNetSupernetConfig(**{**TINY_SPACE, "in_channels": 3, "num_classes": 3})
    config = dataclasses.replace(retrain_preset("full"), epochs=2, batch_size=4, device="cpu", eval_batch_size=4)
    arch = ("k3_e3", "k5_e6", "skip", "k3_e3")

    def sources():
        train = imagenet_folder(image_folder, "train", image_size=16, seed=1)
        val = imagenet_folder(image_folder, "val", image_size=16, seed=1)
        return (EpochBatches(ImageFolderLoader(train, 4, seed=1, workers=0)),
                EpochBatches(ImageFolderLoader(val, 4, seed=1, workers=0, train=False), advance=False))

    straight = retrain_arch(arch, space, config, *sources(), tmp_path / "a", seed=5)
    real_run_epoch = Retrainer.run_epoch
    calls = []

    def crash_in_epoch_two(self):
        calls.append(1)
        if len(calls) == 2:
            raise Interrupt
        return real_run_epoch(self)
    Retrainer.run_epoch = crash_in_epoch_two
    try:
        with pytest.raises(Interrupt):
            retrain_arch(arch, space, config, *sources(), tmp_path / "b", seed=5)
    finally:
        Retrainer.run_epoch = real_run_epoch
    resumed = retrain_arch(arch, space, config, *sources(), tmp_path / "b", seed=5)
    assert [h["epoch"] for h in resumed.history] == [1, 2]
    for (name, a), b in zip(straight.model.state_dict().items(), resumed.model.state_dict().values()):
        assert torch.equal(a, b), name
    assert straight.test_acc == resumed.test_acc
    assert [h["train_loss"] for h in straight.history] == [h["train_loss"] for h in resumed.history]


def test_run_search_writes_an_arch_within_the_limit(tmp_path, one_thread):
    """Supernet training + evolution + random search on a tiny config; the JSON holds arch, FLOPs and provenance."""
    from pada_lite.mobilenet_search import SearchConfig, run_search
    from pada_lite.provenance import read_json
    run = dataclasses.replace(_tiny_run(), data=DataConfig(image_size=16, train_size=192, valid_size=64))
    run.train.epochs = 1
    search = SearchConfig(flops_limit=0.4, population=6, iterations=2, parents=3, bn_batches=1, bn_batch_size=32,
                          eval_batch_size=64)
    record = run_search(run, search, tmp_path)
    saved = read_json(tmp_path / "search.json")
    table = FlopsTable(run.space)
    assert saved["arch"] == record["arch"] and saved["mflops"] == pytest.approx(table.mflops(saved["arch"].split("-")))
    assert saved["mflops"] <= 0.4 and max(saved["evolution"]["mflops"] + saved["random"]["mflops"]) <= 0.4
    assert len(saved["evolution"]["evaluated"]) == 12 and saved["config"]["space"]["kind"] == "mobilenet"
    assert {"git_commit", "device", "wall_time_s", "created"} <= set(saved)


def test_cli_parses_the_mobilenet_commands():
    from pada_lite.cli import build_parser
    args = build_parser().parse_args(["search", "--space", "mobilenet", "--preset", "lite", "--flops-limit", "2"])
    assert (args.space, args.preset, args.flops_limit) == ("mobilenet", "lite", 2.0)
    args = build_parser().parse_args(["retrain", "--space", "mobilenet", "--arch", "k3_e3"])
    assert args.func.__name__ == "cmd_retrain" and args.arch == "k3_e3"


def test_cli_refuses_the_other_space_options_in_one_line(capsys):
    from pada_lite.cli import main
    assert main(["search", "--space", "mobilenet", "--sampler", "spos"]) == 2
    assert main(["retrain", "--space", "darts", "--genotype", "DARTS_V2", "--arch", "k3_e3"]) == 2
    assert main(["retrain", "--space", "mobilenet", "--preset", "paper", "--arch", "k3_e3"]) == 2
    assert main(["retrain", "--space", "darts"]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines == ["error: --sampler applies to --space darts, not --space mobilenet",
                     "error: --arch applies to --space mobilenet, not --space darts",
                     "error: --preset paper does not exist for retrain --space mobilenet: choose lite or full",
                     "error: name the genotype: --genotype DARTS_V2, a genotype.json, or a Genotype(...) string"]


def test_cli_set_overrides_mobilenet_presets_and_names_bad_fields(capsys, tmp_path):
    from pada_lite.cli import main
    assert main(["search", "--space", "mobilenet", "--set", "evolution.nope=1", "--out", str(tmp_path)]) == 2
    assert main(["retrain", "--space", "mobilenet", "--arch", "k3_e3", "--set", "retrain.epochs=two",
                 "--out", str(tmp_path)]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines[0].startswith("error: unknown field 'nope' in section 'evolution'")
    assert lines[1] == "error: retrain.epochs='two' is not an integer (retrain.epochs expects int)"
