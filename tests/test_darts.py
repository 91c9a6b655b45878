"""The DARTS space: parameter counts, genotypes, node-input paths, PA on used edges, search limits, exact resumes."""
from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
import torch

from pada_lite.config import DataConfig, RunConfig, TrainConfig
from pada_lite.data import ImageData
from pada_lite.retrain import CHECKPOINT as RETRAIN_CHECKPOINT
from pada_lite.retrain import RetrainConfig, Retrainer, count_parameters
from pada_lite.search import evolutionary_search, random_search
from pada_lite.spaces import ArchError, build_supernet, make_path_sampler
from pada_lite.spaces.darts import (
    CELL_EDGES,
    DARTS_OPS,
    DARTS_V2,
    NUM_CELL_EDGES,
    DartsArchSpace,
    DartsNetwork,
    DartsNetworkConfig,
    DartsSupernetConfig,
    arch_to_genotype,
    check_arch,
    genotype_params,
    genotype_to_arch,
    genotype_to_str,
    node_edges,
    str_to_genotype,
)
from pada_lite.training import Trainer

TINY_SPACE = DartsSupernetConfig(channels=4, cells=3, in_channels=1)


def supernet_params_by_hand(c: int, cells: int, c_in: int, classes: int, stem: int = 3) -> int:
    """The DARTS supernet without BN parameters (affine=False), derived op by op.

    Per edge at width C (weights only; pools have none): sep_conv_k = 2 (k²C + C²) (two depthwise + pointwise
    pairs), dil_conv_k = k²C + C², skip = 0, or C² on a stride-2 edge (FactorizedReduce: two 1x1 convs C -> C/2).
    Summed over the 5 conv ops: 2(9C + C²) + 2(25C + C²) + (9C + C²) + (25C + C²) = 102 C + 6 C² per edge, 14 edges
    per cell, plus C² on each of the 8 stride-2 edges of a reduction cell (those reading the cell's two inputs).
    Preprocessing: a 1x1 conv C_pp -> C (or a FactorizedReduce, also C_pp * C weights) and C_p -> C.
    Stem: 3x3 conv c_in -> 3C. Classifier: 4 C_last -> classes, with bias. Reductions at cells//3 and 2 cells//3.
    """
    total = 9 * c_in * stem * c
    c_pp = c_p = stem * c
    width = c
    for i in range(cells):
        reduction = i in (cells // 3, 2 * cells // 3)
        width *= 2 if reduction else 1
        total += (c_pp + c_p) * width + 14 * (102 * width + 6 * width ** 2) + (8 * width ** 2 if reduction else 0)
        c_pp, c_p = c_p, 4 * width
    return total + c_p * classes + classes


def test_full_supernet_parameters_match_the_hand_derivation():
    model = build_supernet(DartsSupernetConfig(channels=16, cells=8, in_channels=3))
    count = sum(p.numel() for p in model.parameters())
    assert count == supernet_params_by_hand(16, 8, 3, 10) == 1_930_522


def test_darts_v2_has_the_published_parameter_count():
    net = DartsNetwork(DARTS_V2, DartsNetworkConfig(channels=36, cells=20))
    params = count_parameters(net)                        # without the auxiliary head, as DARTS reports
    assert round(params / 1e6, 1) == 3.3                  # the published 3.3 M
    assert params == 3_349_342                            # the reference code's log: "param size = 3.349342MB"
    assert genotype_params(DARTS_V2, net.config) == params
    assert count_parameters(net, exclude="") > params     # the auxiliary head exists and is left out


def test_genotype_params_match_built_networks():
    space = DartsArchSpace(DartsNetworkConfig(channels=8, cells=5, in_channels=1, image_size=28))
    rng = np.random.default_rng(1)
    for _ in range(5):
        arch = space.random(rng)
        net = DartsNetwork(arch_to_genotype(arch), space.network)
        assert space.params(arch) == count_parameters(net)


def test_genotype_string_round_trip():
    rng = np.random.default_rng(0)
    space = DartsArchSpace()
    for genotype in [DARTS_V2] + [arch_to_genotype(space.random(rng)) for _ in range(20)]:
        text = genotype_to_str(genotype)
        assert genotype_to_str(str_to_genotype(text)) == text
        assert str_to_genotype(text).normal == [tuple(p) for p in genotype.normal]
    reference = ("Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1), "
                 "('sep_conv_3x3', 1), ('skip_connect', 0), ('skip_connect', 0), ('dil_conv_3x3', 2)], "
                 "normal_concat=range(2, 6), reduce=[('max_pool_3x3', 0), ('max_pool_3x3', 1), ('skip_connect', 2), "
                 "('max_pool_3x3', 1), ('max_pool_3x3', 0), ('skip_connect', 2), ('skip_connect', 2), "
                 "('max_pool_3x3', 1)], reduce_concat=range(2, 6))")   # as the reference's genotypes.py writes it
    assert str_to_genotype(reference) == str_to_genotype(genotype_to_str(DARTS_V2)) == str_to_genotype("DARTS_V2")
    for bad, match in [("Genotype(normal=[('none', 0)] * 8)", "cannot read"),
                       (reference.replace("('dil_conv_3x3', 2)", "('dil_conv_3x3', 5)"), "reads state 5"),
                       (reference.replace("'max_pool_3x3', 0", "'none', 0"), "unknown op 'none'"),
                       ("__import__('os')", "cannot read")]:
        with pytest.raises(ArchError, match=match):
            str_to_genotype(bad)


def test_genotype_arch_round_trip_keeps_each_node():
    arch = genotype_to_arch(DARTS_V2)
    assert check_arch(arch) == arch
    back = arch_to_genotype(arch)
    for cell in ("normal", "reduce"):
        for k in range(4):
            assert sorted(getattr(back, cell)[2 * k:2 * k + 2]) == sorted(getattr(DARTS_V2, cell)[2 * k:2 * k + 2])


@pytest.mark.parametrize("sampler", ["uniform", "importance"])
def test_paths_pick_two_distinct_inputs_uniformly(sampler):
    config = TrainConfig(path_sampler=sampler, pa_scope="edge")
    paths = make_path_sampler(config, TINY_SPACE, torch.Generator().manual_seed(0))
    pairs = Counter()
    for _ in range(3000):
        (arch, weight), = paths.sample()
        assert check_arch(arch) == arch and weight == 1.0
        used = tuple(j for j, e in enumerate(node_edges(3)) if arch[NUM_CELL_EDGES + e] is not None)
        pairs[used] += 1
    assert len(pairs) == 10                                  # node 5 reads 2 of 5 states: C(5, 2) pairs
    expected = 3000 / 10
    chi2 = sum((n - expected) ** 2 / expected for n in pairs.values())
    assert chi2 < 27.9                                       # chi-square, 9 dof, p = 0.001


def test_pa_scores_only_the_edges_a_path_uses():
    model = build_supernet(TINY_SPACE)
    paths = make_path_sampler(TrainConfig(path_sampler="importance", pa_scope="edge"), TINY_SPACE,
                              torch.Generator().manual_seed(0))
    (arch, _), = paths.sample()
    model(torch.randn(4, 1, 8, 8), arch).sum().backward()
    paths.observe(model, [arch])
    scores = paths.op_scores()                               # [28, 7]
    scored = {(e, j) for e, j in (scores > 0).nonzero().tolist()}
    used = {(e, DARTS_OPS.index(op)) for e, op in enumerate(arch) if op is not None}
    parametric = {(e, j) for e, j in used if DARTS_OPS[j] not in ("max_pool_3x3", "avg_pool_3x3")
                  and not (DARTS_OPS[j] == "skip_connect" and (e < NUM_CELL_EDGES or CELL_EDGES[e % 14][0] >= 2))}
    assert scored == parametric and scored


def test_search_never_returns_a_candidate_over_its_limit():
    space = DartsArchSpace(DartsNetworkConfig(channels=8, cells=5, in_channels=1, image_size=28), max_params=45_000)
    def fitness(archs):  # rewards size: pushes at the limit
        return np.array([space.params(a) for a in archs], float)
    for result in (evolutionary_search(fitness, 60, population=12, parents=4, seed=0, arch_space=space),
                   random_search(fitness, 40, seed=0, arch_space=space)):
        assert max(space.params(a) for a in result.evaluated) <= 45_000
        assert space.params(result.best) <= 45_000 and result.best_fitness > 40_000
    assert max(space.params(space.random(np.random.default_rng(s))) for s in range(50)) > 45_000  # the limit binds


def test_run_config_round_trips_the_darts_space():
    config = RunConfig(space=TINY_SPACE, data=DataConfig(image_size=28))
    again = RunConfig.from_dict(config.to_dict())
    assert again == config and isinstance(again.space, DartsSupernetConfig)


def tiny_run(epochs: int = 2) -> RunConfig:
    return RunConfig(name="darts-tiny", space=TINY_SPACE,
                     data=DataConfig(image_size=8, train_size=256, valid_size=64, test_size=64),
                     train=TrainConfig(epochs=epochs, batch_size=64, path_sampler="importance", pa_scope="edge",
                                       data_sampler="importance", tau=0.5, progress=False, device="cpu"))


def interrupt_after_first_epoch(trainer) -> None:
    real, calls = trainer.run_epoch, []

    def epoch_then_crash():
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real()
    trainer.run_epoch = epoch_then_crash
    with pytest.raises(KeyboardInterrupt):
        trainer.run()


@pytest.mark.filterwarnings("ignore:all scores are zero")  # 4 steps per epoch leave some edges unsampled
def test_supernet_trains_through_the_trainer_and_resumes_exactly(tmp_path, one_thread):
    straight = Trainer(tiny_run(), tmp_path / "a")
    straight.run()
    interrupt_after_first_epoch(Trainer(tiny_run(), tmp_path / "b"))
    resumed = Trainer(tiny_run(), tmp_path / "b")
    resumed.run()
    for a, b in zip(straight.model.state_dict().values(), resumed.model.state_dict().values()):
        assert torch.equal(a, b)
    assert torch.equal(straight.path_sampler.probabilities(), resumed.path_sampler.probabilities())
    assert not torch.allclose(straight.path_sampler.probabilities(), torch.full((28, 7), 1 / 7, dtype=torch.float64))
    def drop_time(history):
        return [{k: v for k, v in h.items() if k != "elapsed_s"} for h in history]
    assert drop_time(straight.history) == drop_time(resumed.history)


def test_retrain_of_a_genotype_resumes_exactly(tmp_path, one_thread):
    g = torch.Generator().manual_seed(0)
    data = ImageData(torch.randint(0, 256, (48, 1, 20, 20), generator=g, dtype=torch.uint8),
                     torch.randint(0, 10, (48,), generator=g), (0.5,), (0.25,), 10)
    network = DartsNetworkConfig(channels=4, cells=3, in_channels=1, image_size=20)
    config = RetrainConfig(epochs=2, batch_size=16, cutout=6, drop_path_prob=0.3, device="cpu")

    def net():
        torch.manual_seed(0)
        return DartsNetwork(DARTS_V2, network)
    straight = Retrainer(net(), data, data, config, tmp_path / "a").run()
    interrupt_after_first_epoch(Retrainer(net(), data, data, config, tmp_path / "b"))
    assert (tmp_path / "b" / RETRAIN_CHECKPOINT).exists()
    resumed = Retrainer(net(), data, data, config, tmp_path / "b").run()
    for a, b in zip(straight.model.state_dict().values(), resumed.model.state_dict().values()):
        assert torch.equal(a, b)
    assert straight.test_acc == resumed.test_acc


def test_network_returns_aux_logits_only_in_training():
    net = DartsNetwork(DARTS_V2, DartsNetworkConfig(channels=4, cells=3, in_channels=1, image_size=28))
    logits, aux = net.train()(torch.randn(2, 1, 28, 28))
    assert logits.shape == aux.shape == (2, 10)
    assert net.eval()(torch.randn(2, 1, 28, 28)).shape == (2, 10)


TINY_PRESET = ["search.data.image_size=8", "search.data.train_size=64", "search.data.valid_size=32",
               "search.data.test_size=32", "search.train.epochs=1", "search.space.channels=4", "search.space.cells=3",
               "evolution.budget=4", "evolution.random_budget=2", "evolution.population=4", "evolution.parents=2",
               "evolution.eval_images=32", "evolution.max_params=9000", "network.channels=4", "network.cells=3",
               "network.image_size=8", "network.auxiliary=false", "retrain_data.image_size=8",
               "retrain_data.train_size=64", "retrain_data.test_size=32", "retrain.epochs=1"]


def test_cli_searches_and_retrains(tmp_path, one_thread, capsys):
    from pada_lite.cli import main
    sets = [arg for item in TINY_PRESET for arg in ("--set", item)]
    assert main(["search", "--space", "darts", "--preset", "lite", *sets, "--out", str(tmp_path / "s")]) == 0
    from pada_lite.provenance import read_json
    record = read_json(tmp_path / "s" / "genotype.json")
    assert record["params"] <= 9000 and record["config"]["evolution"]["budget"] == 4 and "git_commit" in record
    assert len(record["evolution"]["evaluated"]) == 4 and max(record["evolution"]["params"]) <= 9000
    assert main(["retrain", "--space", "darts", "--genotype", str(tmp_path / "s" / "genotype.json"), *sets,
                 "--out", str(tmp_path / "r")]) == 0
    result = read_json(tmp_path / "r" / "result.json")
    assert result["genotype"] == record["genotype"] and result["params"] == record["params"]
    assert main(["retrain", "--space", "darts", "--genotype", "Genotype(normal=[])"]) == 2
    assert "cannot read genotype" in capsys.readouterr().err


def test_lite_comparison_runs_unit_by_unit(tmp_path, one_thread):
    from pada_lite.cellsearch import LiteComparison, comparison_units, lite, override_preset, run_lite_comparison
    p, c = override_preset(lite(), TINY_PRESET), LiteComparison(seeds=(0, 1), random_genotypes=1)
    out = tmp_path / "darts_lite"
    first = run_lite_comparison(out, limit_units=3, work=tmp_path / "runs", p=p, c=c, workers=2)
    assert len(first["missing_units"]) == len(comparison_units(c)) - 3 == 7
    kept = (out / "search_spos.json").read_text()
    summary = run_lite_comparison(out, work=tmp_path / "runs", p=p, c=c)
    assert (out / "search_spos.json").read_text() == kept                        # finished units are not redone
    assert not summary["missing_units"] and summary["cpu_time_s_total"] > 0
    assert {r["label"] for r in summary["rows"]} == {"spos", "pada", "DARTS_V2", "random0"}
    assert all(r["test_acc"]["n"] == 2 and len(r["test_acc"]["values"]) == 2 for r in summary["rows"])
    pada_row = next(r for r in summary["rows"] if r["label"] == "pada")
    assert summary["searches"]["pada"]["genotype"] == pada_row["genotype"]


def fake_cifar(n: int, seed: int) -> ImageData:
    g = torch.Generator().manual_seed(seed)
    return ImageData(torch.randint(0, 256, (n, 3, 32, 32), generator=g, dtype=torch.uint8),
                     torch.randint(0, 10, (n,), generator=g), (0.49, 0.48, 0.45), (0.25, 0.24, 0.26), 10)


def test_paper_preset_holds_the_darts_protocol():
    from pada_lite.cellsearch import paper
    p = paper()
    assert (p.search.space.cells, p.search.space.channels, p.search.space.in_channels) == (8, 16, 3)
    assert (p.search.data.dataset, p.search.data.train_size, p.search.data.valid_size) == ("cifar10", 25000, 25000)
    assert (p.network.cells, p.network.channels, p.network.auxiliary) == (20, 36, True)
    assert p.retrain_data.train_size is None and p.retrain_data.valid_size == 0 and p.retrain_data.augment is False
    r = p.retrain
    assert (r.epochs, r.batch_size, r.lr, r.weight_decay, r.cutout, r.drop_path_prob, r.auxiliary_weight,
            r.grad_clip, r.augment, r.amp, r.channels_last) == (600, 96, 0.025, 3e-4, 16, 0.2, 0.4, 5.0, True, True,
                                                                True)
    assert p.search.train.amp and p.search.train.channels_last and p.search.train.pa_scope == "edge"


def test_paper_paths_run_on_tiny_cifar_inputs(tmp_path, one_thread):
    """The full tier's search and retrain code paths (CIFAR shapes, augmentation, cutout, drop-path, auxiliary head),
    on a few fake 32x32 images with small widths; AMP and channels_last apply on CUDA only."""
    from pada_lite.cellsearch import override_preset, paper, retrain_genotype, search
    from pada_lite.data import Splits
    p = override_preset(paper(), ["search.space.channels=4", "search.space.cells=3", "search.train.epochs=1",
                                  "search.train.batch_size=32", "evolution.budget=4", "evolution.random_budget=2",
                                  "evolution.population=4", "evolution.parents=2", "evolution.eval_batch_size=32",
                                  "network.channels=4", "network.cells=3", "retrain.epochs=1", "retrain.batch_size=32"])
    splits = Splits(fake_cifar(64, 0), fake_cifar(32, 1), fake_cifar(32, 2))
    record = search(p, "pada", tmp_path / "s", splits=splits)
    assert record["params"] <= p.evolution.max_params and record["config"]["name"] == "paper"
    result, info = retrain_genotype(p, str_to_genotype(record["genotype"]), tmp_path / "r", splits=splits)
    assert info["params"] == count_parameters(result.model) and info["macs"] > 0
    assert result.model.auxiliary_head is not None and len(result.history) == 1
