"""Path samplers (which sub-network trains at a step) and data samplers (which samples an epoch visits).

Interface used by :func:`pada_lite.training.train_supernet`:

- ``PathSampler.start_epoch(epoch, num_epochs)``; ``sample() -> list[(arch, loss_weight)]`` (the paths of one
  step, gradients accumulated over them); ``observe(model, archs)`` after the optimizer step (reads ``.grad``);
  ``state_dict()`` / ``load_state_dict()``; ``probabilities()`` for logging.
- ``DataSampler.epoch_order(epoch, num_epochs) -> LongTensor[N]`` (dataset indices of one epoch);
  ``observe(indices, logits, labels)`` after each forward pass; ``loss_weights(indices) -> Tensor[B] | None``;
  ``state_dict()`` / ``load_state_dict()``.

All randomness comes from the ``torch.Generator`` a sampler is given, so a checkpoint restores it exactly.
"""
from __future__ import annotations

from typing import Sequence

import torch

from .spaces.nb201 import NUM_EDGES


class PathSampler:
    """Uniform single-path sampling (SPOS): every edge draws its op uniformly at random."""

    def __init__(self, ops: Sequence[str], generator: torch.Generator, num_edges: int = NUM_EDGES):
        self.ops = tuple(ops)
        self.num_edges = num_edges
        self.generator = generator

    def start_epoch(self, epoch: int, num_epochs: int) -> None:
        """Called before the first step of every epoch."""

    def sample(self) -> list[tuple[tuple, float]]:
        """The (arch, loss weight) pairs trained at this step."""
        idx = torch.randint(len(self.ops), (self.num_edges,), generator=self.generator).tolist()
        return [(tuple(self.ops[i] for i in idx), 1.0)]

    def observe(self, model: torch.nn.Module, archs: Sequence[tuple]) -> None:
        """Called after the optimizer step with the archs trained at that step."""

    def probabilities(self) -> torch.Tensor:  # [num_edges, K]
        return torch.full((self.num_edges, len(self.ops)), 1.0 / len(self.ops))

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass


class DataSampler:
    """Uniform data order: a fresh random permutation of the training set every epoch."""

    def __init__(self, labels: torch.Tensor, generator: torch.Generator):
        if len(labels) == 0:
            raise ValueError("the training set is empty: nothing to sample")
        self.num_samples = len(labels)
        self.generator = generator

    def epoch_order(self, epoch: int, num_epochs: int) -> torch.Tensor:  # [N] dataset indices
        return torch.randperm(self.num_samples, generator=self.generator)

    def observe(self, indices: torch.Tensor, logits: torch.Tensor, labels: torch.Tensor) -> None:
        """Called after each training forward pass (detached logits)."""

    def loss_weights(self, indices: torch.Tensor) -> torch.Tensor | None:
        return None

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass


def make_path_sampler(config, ops: Sequence[str], generator: torch.Generator) -> PathSampler:
    """The path sampler named by ``config.path_sampler`` (a TrainConfig)."""
    if config.path_sampler == "uniform":
        return PathSampler(ops, generator)
    raise NotImplementedError(f"path sampler {config.path_sampler!r} is not implemented yet")


def make_data_sampler(config, labels: torch.Tensor, generator: torch.Generator) -> DataSampler:
    """The data sampler named by ``config.data_sampler`` (a TrainConfig)."""
    if config.data_sampler == "uniform":
        return DataSampler(labels, generator)
    raise NotImplementedError(f"data sampler {config.data_sampler!r} is not implemented yet")
