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
    assert result.history[-1]["train_acc"] > 20.0  # 10 classes: chance is 10 %
    assert (tmp_path / "checkpoint.pt").exists() and (tmp_path / "supernet.pt").exists()
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
