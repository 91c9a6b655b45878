import json

import numpy as np
import pytest
import torch

from pada_lite.config import override
from pada_lite.evaluation import evaluate_archs
from pada_lite.spaces import conv_only_archs
from pada_lite.training import Trainer, TrainingError, load_supernet, train_supernet


def test_spos_run_learns_and_leaves_checkpoint_and_provenance(tiny_config, tiny_splits, tmp_path):
    config = override(tiny_config, ["train.epochs=4", "train.lr=0.1"])
    result = train_supernet(config, tmp_path, splits=tiny_splits)
    assert [h["epoch"] for h in result.history] == [1, 2, 3, 4]
    assert result.history[-1]["train_loss"] < result.history[0]["train_loss"]
    assert result.history[-1]["train_acc"] > 15.0  # 10 classes: chance is 10 %
    assert (tmp_path / "checkpoint.pt").exists() and (tmp_path / "supernet.pt").exists()
    assert 0 < result.cpu_time_s < 600
    record = json.loads((tmp_path / "train.json").read_text())
    assert record["config"] == config.to_dict() and record["seed"] == 0
    assert record["pada_lite_version"] and record["device"].startswith("cpu")


def test_same_seed_gives_identical_weights(tiny_config, tiny_splits):
    a = train_supernet(override(tiny_config, ["train.epochs=1"]), splits=tiny_splits).model.state_dict()
    b = train_supernet(override(tiny_config, ["train.epochs=1"]), splits=tiny_splits).model.state_dict()
    c = train_supernet(override(tiny_config, ["train.epochs=1", "train.seed=1"]), splits=tiny_splits).model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a)


def test_rerun_resumes_finished_run_without_training(tiny_config, tiny_splits, tmp_path):
    first = train_supernet(tiny_config, tmp_path, splits=tiny_splits)
    again = Trainer(tiny_config, tmp_path, splits=tiny_splits)
    assert again.try_resume() and again.epoch == tiny_config.train.epochs
    assert again.cpu_s == pytest.approx(first.cpu_time_s, abs=0.5)  # the CPU time so far travels with the checkpoint
    assert all(torch.equal(v, again.model.state_dict()[k]) for k, v in first.model.state_dict().items())


def test_checkpoint_of_another_config_is_refused(tiny_config, tiny_splits, tmp_path):
    train_supernet(override(tiny_config, ["train.epochs=1"]), tmp_path, splits=tiny_splits)
    with pytest.raises(TrainingError, match="another config.*train.lr"):
        train_supernet(override(tiny_config, ["train.epochs=1", "train.lr=0.1"]), tmp_path, splits=tiny_splits)


def test_damaged_checkpoint_is_reported(tiny_config, tiny_splits, tmp_path):
    (tmp_path / "checkpoint.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(TrainingError, match="damaged"):
        train_supernet(tiny_config, tmp_path, splits=tiny_splits)


def test_nan_loss_stops_with_a_clear_error_and_keeps_last_checkpoint(tiny_config, tiny_splits, tmp_path):
    config = override(tiny_config, ["train.lr=1e12", "train.grad_clip=0", "train.momentum=0"])
    with pytest.raises(TrainingError, match="lower train.lr"):
        train_supernet(config, tmp_path, splits=tiny_splits)


def test_evaluate_archs_equals_plain_forward(tiny_config, tiny_splits):
    model = train_supernet(override(tiny_config, ["train.epochs=1"]), splits=tiny_splits).model
    archs = conv_only_archs()[:3]
    acc = evaluate_archs(model, archs, tiny_splits.test, batch_size=128)
    x, y = tiny_splits.test.batch(torch.arange(len(tiny_splits.test)))
    with torch.no_grad():
        expected = [100.0 * float((torch.cat([model(xb, a).argmax(1) for xb in x.split(128)]) == y).float().mean())
                    for a in archs]
    np.testing.assert_allclose(acc, expected, atol=1e-4)


def test_load_supernet_roundtrip(tiny_config, tiny_splits, tmp_path):
    result = train_supernet(override(tiny_config, ["train.epochs=1"]), tmp_path, splits=tiny_splits)
    model, config = load_supernet(tmp_path)
    assert config == override(tiny_config, ["train.epochs=1"])
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in result.model.state_dict().items())
    with pytest.raises(FileNotFoundError, match="train first"):
        load_supernet(tmp_path / "missing")


def _op_weights_after_steps(config, splits, steps: int) -> dict:
    """Weights of every op after ``steps`` steps, starting from an op sampled once and never again."""
    trainer = Trainer(config, splits=splits)
    x, y = splits.train.batch(torch.arange(64))
    first = ("nor_conv_3x3",) * 6
    later = ("skip_connect",) * 6
    trainer.path_sampler.sample = lambda: [(first, 1.0)]
    trainer.train_step(x, y, torch.arange(64), torch.zeros(3))
    after_first = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    trainer.path_sampler.sample = lambda: [(later, 1.0)]
    for _ in range(steps):
        trainer.train_step(x, y, torch.arange(64), torch.zeros(3))
    return {k: (after_first[k], v) for k, v in trainer.model.state_dict().items()}


def test_zero_filled_grads_keep_moving_ops_sampled_before_as_the_reference(tiny_config, tiny_splits, one_thread):
    conv = "cells.0.edges.0.nor_conv_3x3.1.weight"  # the conv3x3 of edge 0, sampled in the first step only
    zero_filled = _op_weights_after_steps(override(tiny_config, ["train.zero_filled_grads=true"]), tiny_splits, 3)
    freed = _op_weights_after_steps(override(tiny_config, ["train.zero_filled_grads=false"]), tiny_splits, 3)
    before, after = zero_filled[conv]
    assert not torch.equal(before, after)  # momentum and weight decay still move it (reference, torch 1.7)
    before, after = freed[conv]
    assert torch.equal(before, after)      # freed gradients: SGD skips it


def test_records_without_zero_filled_grads_load_as_freed_gradients(tiny_config):
    from pada_lite.config import RunConfig
    old = tiny_config.to_dict()
    del old["train"]["zero_filled_grads"]
    assert tiny_config.train.zero_filled_grads is True  # the default follows the reference
    assert RunConfig.from_dict(old).train.zero_filled_grads is False


def _second_epoch_order(config, splits) -> torch.Tensor:
    trainer = Trainer(config, splits=splits)
    trainer.run_epoch()
    return trainer.data_sampler.epoch_order(1, config.train.epochs)


def test_methods_of_one_seed_see_the_same_batches_with_a_separate_data_stream(tiny_config, tiny_splits, one_thread):
    spos, pa = ["train.path_sampler=uniform"], ["train.path_sampler=importance"]
    same = [override(tiny_config, m + ["train.separate_data_rng=true"]) for m in (spos, pa)]
    shared = [override(tiny_config, m + ["train.separate_data_rng=false"]) for m in (spos, pa)]
    assert torch.equal(*[_second_epoch_order(c, tiny_splits) for c in same])
    assert not torch.equal(*[_second_epoch_order(c, tiny_splits) for c in shared])  # path draws moved the stream


def test_every_epoch_records_how_peaked_its_sampling_was(tiny_config, tiny_splits):
    spos = train_supernet(override(tiny_config, ["train.epochs=2"]), splits=tiny_splits).history
    assert all(h["effective_paths"] == pytest.approx(5.0 ** 6) and h["data_effective_share"] == pytest.approx(1.0)
               for h in spos) and "path_probs" not in spos[0]
    pada = train_supernet(override(tiny_config, ["train.epochs=3", "train.tau=1.0", "train.path_sampler=importance",
                                                 "train.data_sampler=importance"]), splits=tiny_splits).history
    last = pada[-1]
    assert last["effective_paths"] < 5.0 ** 6 and last["data_effective_share"] < 1.0 and last["data_max_nq"] > 1.0
    assert np.allclose(np.sum(last["path_probs"], axis=1), 1.0, atol=1e-4) and len(last["path_probs"]) == 6
