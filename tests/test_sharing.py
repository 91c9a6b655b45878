"""Supernet families: routing covers the NB201 space once, kill-and-resume is exact, the experiment's metrics."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from pada_lite.config import lite, override
from pada_lite.family import (
    FamilyConfig,
    FamilyTrainer,
    Member,
    evaluate_family,
    few_shot_nb201,
    full_member,
    gm_nb201,
    routing_table,
    split_by_edge,
    split_randomly,
)
from pada_lite.samplers import ArchListSampler, PathSampler
from pada_lite.sharing import t_interval
from pada_lite.spaces import NB201_OPS, arch_to_product_index, enumerate_archs
from pada_lite.training import CHECKPOINT, TrainingError
from pada_lite.yardsticks import live_op_counts, within_group_tau

TINY = ["data.train_size=256", "data.test_size=128", "data.image_size=8", "space.channels=4",
        "space.cells_per_stage=1", "train.batch_size=64", "train.epochs=3", "train.progress=false",
        "rank.batch_size=128", "train.path_sampler=importance", "train.data_sampler=importance"]
ALL = len(NB201_OPS) ** 6


def owners_count(members) -> np.ndarray:
    """How many members own every arch of the space (counted from the members, not from the routing table)."""
    count = np.zeros(ALL, dtype=int)
    for member in members:
        np.add.at(count, member.arch_indices(NB201_OPS), 1)
    return count


def test_routing_sends_every_arch_to_exactly_one_member():
    root = full_member(NB201_OPS)
    few_shot = split_by_edge(root, 0, [[j] for j in range(5)])
    halves = split_by_edge(root, 3, [[2, 3], [0, 1, 4]])
    gm = [c for half in halves for c in split_by_edge(half, 5, [[0, 4], [1, 2, 3]])]
    gen = torch.Generator().manual_seed(0)
    random4 = [c for half in split_randomly(root, NB201_OPS, (0.4, 0.6), gen)
               for c in split_randomly(half, NB201_OPS, (0.5, 0.5), gen)]
    for members in ([root], few_shot, gm, random4):
        assert (owners_count(members) == 1).all()
        owner = routing_table(members, NB201_OPS)
        for m, member in enumerate(members):                      # the table agrees with each member's own archs
            assert (owner[member.arch_indices(NB201_OPS)] == m).all()
    assert sorted(len(m.arch_indices(NB201_OPS)) for m in few_shot) == [3125] * 5
    assert [len(m.arch_indices(NB201_OPS)) for m in gm] == [2500, 3750, 3750, 5625]  # 15625 x (2/5 or 3/5)^2
    assert all(owner_ops(m, 0) == {NB201_OPS[j]} for j, m in enumerate(few_shot))


def owner_ops(member: Member, edge: int) -> set:
    archs = enumerate_archs()
    return {archs[i][edge] for i in member.arch_indices(NB201_OPS)}


def test_routing_refuses_overlaps_and_holes():
    root = full_member(NB201_OPS)
    a, b = split_by_edge(root, 0, [[0, 1], [2, 3, 4]])
    with pytest.raises(ValueError, match="no member"):
        routing_table([a], NB201_OPS)
    with pytest.raises(ValueError, match="more than one"):
        routing_table([a, b, root], NB201_OPS)


def test_arch_list_sampler_draws_only_listed_archs_and_follows_the_base_distribution():
    archs = [enumerate_archs()[i] for i in (0, 7, 3124, 15624)]
    sampler = ArchListSampler(PathSampler(NB201_OPS, torch.Generator().manual_seed(0)), archs)
    drawn = [sampler.sample()[0][0] for _ in range(400)]
    assert set(drawn) == set(archs)
    assert sampler.weights().tolist() == pytest.approx([0.25] * 4)


def test_family_trains_ranks_and_routes(tiny_splits_family, one_thread):
    config, splits = tiny_splits_family
    trainer = FamilyTrainer(config, FamilyConfig(grouping="gm", split_epochs=(1, 2), gm_batches=2), None, splits)
    trainer.run()
    assert len(trainer.members) == 4 and [s["member"] for s in trainer.split_log] == ["0", "0.0", "0.1"]
    assert all(np.asarray(s["distances"][str(s["edge"])]).shape == (5, 5) for s in trainer.split_log)
    archs = enumerate_archs()[::977]
    acc = evaluate_family(trainer.model, archs, splits.test, 128)
    for arch, a in zip(archs, acc):                           # each arch is ranked with its owner's weights
        member = trainer.model.members[trainer.model.member_of(arch)]
        from pada_lite.evaluation import evaluate_archs_simple
        assert a == pytest.approx(float(evaluate_archs_simple(member, [arch], splits.test, 128)[0]))
    owner = routing_table(trainer.members, NB201_OPS)[arch_to_product_index(archs[0])]
    assert trainer.model.member_of(archs[0]) == owner


@pytest.fixture
def tiny_splits_family():
    from pada_lite.data import load_splits
    config = override(lite(), TINY)
    return config, load_splits(config.data)


class Stop(Exception):
    pass


@pytest.mark.parametrize("family", [
    FamilyConfig(grouping="gm", split_epochs=(1, 2), gm_batches=2, reinit_last_split=True),
    FamilyConfig(grouping="random", split_epochs=(1,), share_prefix=1),
    FamilyConfig(grouping="edge", split_epochs=(1,), restart_lr=True)])
def test_family_kill_and_resume_is_exact(tmp_path, tiny_splits_family, one_thread, family):
    config, splits = tiny_splits_family
    config = override(config, ["train.checkpoint_every_steps=1"])
    reference = FamilyTrainer(config, family, tmp_path / "ref", splits)
    reference.run()
    # killed after the checkpoint of step 2 of epoch 2 (after the first split), then resumed in a new trainer
    killed = FamilyTrainer(config, family, tmp_path / "run", splits)
    original = killed.train_step

    def dying_step(*args):
        if killed.epoch == 1 and killed.step == 2:
            raise Stop
        original(*args)
    killed.train_step = dying_step
    with pytest.raises(Stop):
        killed.run()
    assert torch.load(tmp_path / "run" / CHECKPOINT, weights_only=False)["family"]["splits_done"] == 1
    resumed = FamilyTrainer(config, family, tmp_path / "run", splits)
    resumed.run()
    assert [m.name for m in resumed.members] == [m.name for m in reference.members]
    assert resumed.split_log == reference.split_log
    assert [h["train_loss"] for h in resumed.history] == [h["train_loss"] for h in reference.history]
    ref_state, state = reference.model.state_dict(), resumed.model.state_dict()
    assert ref_state.keys() == state.keys()
    assert all(torch.equal(ref_state[k], state[k]) for k in ref_state)


def test_a_checkpoint_of_another_family_is_refused(tmp_path, tiny_splits_family, one_thread):
    config, splits = tiny_splits_family
    config = override(config, ["train.epochs=1"])
    FamilyTrainer(config, FamilyConfig(grouping="edge", split_epochs=(0,)), tmp_path, splits).run()
    with pytest.raises(TrainingError, match="another family config"):
        FamilyTrainer(config, FamilyConfig(grouping="random", split_epochs=(0,)), tmp_path, splits).run()


def test_prefix_sharing_shares_the_stem_and_first_cells_only(tiny_splits_family, one_thread):
    config, splits = tiny_splits_family
    config = override(config, ["train.epochs=1", "space.cells_per_stage=2"])
    trainer = FamilyTrainer(config, FamilyConfig(grouping="edge", split_epochs=(0,), share_prefix=2), None, splits)
    trainer.run()
    a, b = trainer.model.members[0], trainer.model.members[3]
    assert a.stem is b.stem and a.cells[0] is b.cells[0] and a.cells[1] is b.cells[1]
    assert a.cells[2] is not b.cells[2] and a.classifier is not b.classifier
    assert not torch.equal(a.classifier.weight, b.classifier.weight)      # trained apart after the split


def test_family_config_errors_name_the_field():
    with pytest.raises(ValueError, match="family.grouping"):
        FamilyConfig(grouping="halves")
    with pytest.raises(ValueError, match="split_epochs"):
        FamilyConfig(grouping="gm", split_epochs=(30, 15))
    with pytest.raises(ValueError, match="random_fractions"):
        FamilyConfig(grouping="random", random_fractions=(0.5, 0.6))


def test_full_tier_presets_match_the_papers_and_train_on_tiny_inputs(tiny_splits_family, one_thread):
    fs, gm = few_shot_nb201(), gm_nb201()
    assert (fs.run.train.batch_size, fs.run.train.lr, fs.run.train.lr_min, fs.run.train.nesterov,
            fs.run.train.weight_decay) == (48, 0.025, 0.001, True, 1e-4)
    assert fs.family.grouping == "edge" and fs.family.edge == 0 and fs.family.split_epochs == (600,)
    assert fs.run.train.epochs == 600 + 5 * 300
    assert (gm.run.train.batch_size, gm.run.train.nesterov, gm.run.train.weight_decay) == (48, True, 5e-4)
    assert gm.family.gm_batches == 100 and gm.family.reinit_last_split and len(gm.family.split_epochs) == 2
    config, splits = tiny_splits_family
    for preset in (fs, gm):   # the presets' model and optimiser on tiny inputs: 3 epochs, splits at 1 and 2
        tiny = override(preset.run, ["data.dataset=fashion_mnist", "data.image_size=8", "data.train_size=128",
                                     "data.test_size=64", "data.augment=false", "space.in_channels=1",
                                     "space.channels=4", "space.cells_per_stage=1", "train.epochs=3",
                                     "train.amp=false", "train.progress=false", "train.device=cpu"])
        family = FamilyConfig(**{**preset.family.to_dict(), "split_epochs": preset.family.split_epochs and
                                 tuple(range(1, 1 + len(preset.family.split_epochs))), "gm_batches": 1})
        from pada_lite.data import load_splits
        trainer = FamilyTrainer(tiny, family, None, load_splits(tiny.data))
        trainer.run()
        assert len(trainer.members) == (5 if preset is fs else 4)


def test_within_group_tau_pools_pairs_inside_groups_only():
    conv3, conv1 = "nor_conv_3x3", "nor_conv_1x1"
    a = (conv3, "none", "none", "none", "none", "none")      # edge 0->1 is dead: nothing reaches node 3
    b = ("none", "none", "none", conv3, "none", "none")      # one live conv3x3
    c = ("none", "none", "none", conv1, "none", "none")      # one live conv1x1
    d = ("none", "none", "none", "avg_pool_3x3", "none", "none")
    e = ("none", "none", "none", "none", "none", "none")      # no live edge: the same (empty) group as a
    archs, true = [a, b, c, d, e], [1.0, 5.0, 4.0, 3.0, 2.0]
    groups = [live_op_counts(arch) for arch in archs]
    # a and e form the only group with two archs: concordant if the prediction orders them as the truth
    assert within_group_tau(true, [1, 0, 0, 0, 2], groups) == 1.0
    assert within_group_tau(true, [2, 9, 9, 9, 1], groups) == -1.0
    assert within_group_tau([1, 2, 3], [3, 2, 1], groups[1:4]) is None


def test_t_interval_matches_scipy():
    from scipy import stats
    values = [0.3, 0.4, 0.5]
    lo, hi = stats.t.interval(0.95, 2, loc=np.mean(values), scale=stats.sem(values))
    assert t_interval(values)["ci95"] == pytest.approx([lo, hi])


def test_one_shot_is_a_family_of_one(tiny_splits_family, one_thread):
    """A family that never splits trains exactly as the plain Trainer (same loop, same numbers)."""
    from pada_lite.training import Trainer
    config, splits = tiny_splits_family
    config = override(config, ["train.epochs=2"])
    plain = Trainer(config, None, splits)
    plain.run()
    family = FamilyTrainer(config, FamilyConfig(), None, splits)
    family.run()
    assert [h["train_loss"] for h in family.history] == [h["train_loss"] for h in plain.history]
    one = family.model.members[0].state_dict()
    assert all(torch.equal(one[k], v) for k, v in plain.model.state_dict().items())
