"""Batched stand-alone training equals training each network separately."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from pada_lite.data import Splits
from pada_lite.spaces.nb201 import StandaloneNB201, SupernetConfig
from pada_lite.standalone import (
    AvgPool2x2,
    AvgPool3x3,
    StandaloneConfig,
    build_batched,
    make_optimizer,
    per_network_loss,
    seeded_network,
    train_and_evaluate,
)

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py: one CPU thread


SPACE = SupernetConfig(channels=4, cells_per_stage=1, bn_affine=True, bn_track_running_stats=True)
ARCHS = [("nor_conv_3x3",) * 6,
         ("none", "skip_connect", "nor_conv_1x1", "avg_pool_3x3", "none", "nor_conv_3x3"),  # node 1 gets zeros
         ("none", "none", "nor_conv_1x1", "skip_connect", "nor_conv_3x3", "none"),         # conv of a zero node
         ("nor_conv_1x1", "nor_conv_3x3", "none", "none", "avg_pool_3x3", "skip_connect")]
TINY = dict(train_size=256, test_size=128, image_size=8, channels=4, epochs=1, batch_size=128)


@pytest.fixture(scope="module")
def small(tiny_splits):
    """256 training and 128 test images of the tiny config (2 steps per epoch)."""
    return Splits(tiny_splits.train.subset(torch.arange(256)), None, tiny_splits.test.subset(torch.arange(128)))


def sgd_steps(model, loss_fn, x, y, steps: int = 3):
    """A few SGD steps of the stand-alone protocol (Nesterov, weight decay, cosine) on one batch."""
    opt, sched = make_optimizer(model, StandaloneConfig(), total_steps=5)
    model.train()
    for _ in range(steps):
        opt.zero_grad()
        loss_fn(model(x), y).backward()
        opt.step()
        sched.step()


def test_batched_training_equals_separate_training():
    torch.manual_seed(0)
    x, y = torch.randn(16, 1, 8, 8, dtype=torch.float64), torch.randint(0, 10, (16,))
    batched = build_batched(ARCHS, seed=3, space=SPACE).double()
    separate = [seeded_network(arch, 3, SPACE).double() for arch in ARCHS]
    sgd_steps(batched, lambda logits, y: per_network_loss(logits, y).sum(), x, y)
    for net in separate:
        sgd_steps(net, F.cross_entropy, x, y)
    batched.eval()
    logits = batched(x)  # eval mode: running BN statistics must match too
    for a, (net, copied) in enumerate(zip(separate, batched.to_networks())):
        net.eval()
        copied.eval()
        torch.testing.assert_close(logits[:, a], net(x), rtol=0, atol=1e-10)
        torch.testing.assert_close(copied(x), net(x), rtol=0, atol=1e-10)


def test_networks_start_from_their_seeded_weights():
    batched = build_batched(ARCHS[:2], seed=1, space=SPACE)
    net = seeded_network(ARCHS[1], 1, SPACE)
    copied = batched.to_networks()[1]
    assert torch.equal(copied.net.classifier.weight, net.net.classifier.weight)
    assert not torch.equal(seeded_network(ARCHS[1], 2, SPACE).net.classifier.weight, net.net.classifier.weight)


@pytest.mark.parametrize("size", [(1, 1), (2, 3), (5, 4), (16, 16)])
def test_fast_pools_equal_torch_pools(size):
    x = torch.randn(2, 3, *size, dtype=torch.float64)
    torch.testing.assert_close(AvgPool3x3()(x), torch.nn.AvgPool2d(3, 1, 1, count_include_pad=False)(x))
    if min(size) >= 2:
        torch.testing.assert_close(AvgPool2x2()(x), torch.nn.AvgPool2d(2, 2)(x))


def test_result_of_an_arch_does_not_depend_on_its_group(small):
    config = StandaloneConfig(**TINY)
    together = train_and_evaluate(ARCHS[1:3], seed=0, config=config, splits=small)
    alone = train_and_evaluate(ARCHS[2:3], seed=0, config=config, splits=small)
    assert together["train_loss"][1] == pytest.approx(alone["train_loss"][0], rel=1e-4)
    assert together["test_acc"][1] == pytest.approx(alone["test_acc"][0], abs=100 * 2 / 128)
    assert len(together["test_acc"]) == 2 and together["wall_time_s"] > 0


def test_interrupted_training_resumes_exactly(tmp_path, small):
    config = StandaloneConfig(**{**TINY, "epochs": 2})  # 2 steps per epoch
    path = tmp_path / "unit.pt"
    steps = []

    def stop_in_second_epoch(n, restored):
        steps.append(n)
        if sum(steps) == 4:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train_and_evaluate(ARCHS[:2], 0, config, small, stop_in_second_epoch, path, checkpoint_every_s=0)
    steps.clear()
    resumed = train_and_evaluate(ARCHS[:2], 0, config, small, lambda n, restored: steps.append((n, restored)), path,
                                 checkpoint_every_s=0)
    assert steps == [(3, True), (1, False)]  # 3 steps were saved (the 4th was interrupted), 1 remained
    uninterrupted = train_and_evaluate(ARCHS[:2], 0, config, small)
    assert resumed["train_loss"] == pytest.approx(uninterrupted["train_loss"], rel=1e-6)
    assert resumed["test_acc"] == uninterrupted["test_acc"]
    assert resumed["cpu_time_s"] > 0


def test_config_round_trip_and_lite_preset():
    config = StandaloneConfig.lite()
    assert StandaloneConfig.from_dict(config.to_dict()) == config
    data = config.data_config()
    assert data.test_size is None and data.valid_size + data.train_size <= 60000  # disjoint parts of the 60k images
    assert data.valid_size >= 30000  # the held-out images that cut the ground truth's test-set noise
    space = config.space_config()
    assert space.bn_affine and space.bn_track_running_stats and space.in_channels == 1
    assert StandaloneNB201(ARCHS[0], space)(torch.randn(2, 1, 16, 16)).shape == (2, 10)
