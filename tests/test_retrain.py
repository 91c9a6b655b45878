"""Stand-alone retraining: exact resume, the auxiliary loss, drop-path schedule, cutout, DataLoader sources."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from pada_lite.config import ConfigError
from pada_lite.data import ImageData
from pada_lite.retrain import CHECKPOINT, RESULT, RetrainConfig, Retrainer, count_parameters, cutout_, retrain
from pada_lite.provenance import read_json
from pada_lite.training import TrainingError


class TinyNet(nn.Module):
    """A small CNN with an auxiliary head and a drop_path_prob attribute (dropout on its features)."""

    def __init__(self):
        super().__init__()
        self.drop_path_prob = 0.0
        self.body = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU())
        self.classifier = nn.Linear(4, 3)
        self.auxiliary_head = nn.Linear(4, 3)
        self.seen_drop = []

    def forward(self, x):
        h = self.body(x).mean((2, 3))
        if self.training:
            self.seen_drop.append(self.drop_path_prob)
            h = nn.functional.dropout(h, self.drop_path_prob)
            return self.classifier(h), self.auxiliary_head(h)
        return self.classifier(h)


def fake_data(n: int, seed: int) -> ImageData:
    g = torch.Generator().manual_seed(seed)
    return ImageData(torch.randint(0, 256, (n, 1, 8, 8), generator=g, dtype=torch.uint8),
                     torch.randint(0, 3, (n,), generator=g), (0.5,), (0.25,), 3)


def config(**kw) -> RetrainConfig:
    base = dict(epochs=3, batch_size=16, lr=0.05, cutout=4, drop_path_prob=0.3, auxiliary_weight=0.4,
                label_smoothing=0.1, device="cpu")
    return RetrainConfig(**{**base, **kw})


def model(seed: int = 0) -> TinyNet:
    torch.manual_seed(seed)
    return TinyNet()


def test_resume_is_exact(tmp_path, one_thread):
    train, test = fake_data(64, 0), fake_data(32, 1)
    straight = retrain(model(), train, test, config(), tmp_path / "a")
    interrupted = Retrainer(model(), train, test, config(), tmp_path / "b")
    calls = []
    real_epoch = interrupted.run_epoch

    def epoch_then_crash():
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt  # killed during epoch 2: the checkpoint of epoch 1 remains
        return real_epoch()
    interrupted.run_epoch = epoch_then_crash
    with pytest.raises(KeyboardInterrupt):
        interrupted.run()
    assert torch.load(tmp_path / "b" / CHECKPOINT, weights_only=False)["epoch"] == 1
    resumed = retrain(model(seed=5), train, test, config(), tmp_path / "b")   # other init: the checkpoint wins
    for a, b in zip(straight.model.state_dict().values(), resumed.model.state_dict().values()):
        assert torch.equal(a, b)
    assert resumed.test_acc == straight.test_acc
    record = read_json(tmp_path / "a" / RESULT)
    assert record["params"] == straight.params and record["config"]["epochs"] == 3 and "device" in record


def test_resume_refuses_other_config(tmp_path, one_thread):
    train, test = fake_data(32, 0), fake_data(16, 1)
    retrain(model(), train, test, config(epochs=1), tmp_path, info={"genotype": "a"})
    with pytest.raises(TrainingError, match="lr"):
        retrain(model(), train, test, config(epochs=2, lr=0.1), tmp_path, info={"genotype": "a"})
    with pytest.raises(TrainingError, match="model"):
        retrain(model(), train, test, config(epochs=2), tmp_path, info={"genotype": "b"})


def test_drop_path_rises_linearly_and_aux_loss_counts(one_thread):
    net = model()
    trainer = Retrainer(net, fake_data(32, 0), fake_data(16, 1), config(epochs=3, cutout=0, label_smoothing=0.0))
    trainer.run()
    assert sorted(set(net.seen_drop)) == pytest.approx([0.0, 0.1, 0.2])
    net.train()
    x, y = fake_data(16, 2).batch(torch.arange(16))
    torch.manual_seed(0)
    loss, _ = trainer._loss(x, y)
    torch.manual_seed(0)
    logits, aux = net(x)
    expected = nn.functional.cross_entropy(logits, y) + 0.4 * nn.functional.cross_entropy(aux, y)
    assert loss.item() == pytest.approx(expected.item(), rel=1e-6)


def test_params_exclude_auxiliary_head():
    net = TinyNet()
    assert count_parameters(net) == count_parameters(net, exclude="") - sum(p.numel() for p in
                                                                           net.auxiliary_head.parameters())


def test_cutout_zeroes_one_clipped_square():
    x = torch.ones(200, 2, 10, 10)
    cutout_(x, 4, torch.Generator().manual_seed(0))
    holes = (x[:, 0] == 0).sum((1, 2))
    assert torch.equal(x[:, 0] == 0, x[:, 1] == 0)
    assert int(holes.max()) == 16 and int(holes.min()) >= 4   # whole square inside, or clipped at a corner
    rows = (x[:, 0] == 0).any(2).sum(1)
    assert int(rows.max()) == 4


def test_dataloader_source(one_thread):
    data = fake_data(48, 0)
    x, y = data.batch(torch.arange(48))
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=16, shuffle=True)
    result = retrain(model(), loader, loader, config(epochs=2))
    assert 0.0 <= result.test_acc <= 100.0 and len(result.history) == 2 and "test_acc" in result.history[-1]


def test_bad_config_names_the_field():
    with pytest.raises(ConfigError, match="drop_path_prob"):
        RetrainConfig(drop_path_prob=1.5)
    with pytest.raises(ConfigError, match="epochs"):
        RetrainConfig(epochs=0)
