"""Supernet families: sub-supernets that each own part of the arch space (Few-Shot NAS, GM-NAS, Deeper Insights).

A family starts as one supernet (one-shot) and splits at the epochs its :class:`FamilyConfig` names. Every arch of
the space is routed to exactly one member; a member owns either a product of per-edge op sets (an ``allowed`` mask:
Few-Shot's one op of edge 0, GM's op groups) or an explicit arch list (random grouping). Children inherit their
parent's weights, optimizer state and sampler state (PA&DA scores), unless asked to start afresh at the last split.
With ``share_prefix = k`` the stem and the first k search cells (and the reduction blocks between them) are one set
of weights for all members (Deeper Insights' partial sharing); otherwise members share nothing.

Training is :class:`pada_lite.training.Trainer`'s loop: a family epoch has as many steps as a one-shot epoch, taken
by the members in turn (step b by member b mod M), so any family trains for the same number of steps as the one-shot
supernet of the same config. Each member keeps its own path sampler (masked to its archs) and its own data sampler,
so PA&DA runs inside every member. A checkpoint holds the family's structure, so kill-and-resume is exact.
"""
from __future__ import annotations

import copy
import dataclasses
import json
import math
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import torch
from torch import nn

from .config import ConfigError, RunConfig, TrainConfig, paper
from .data import ImageData
from .provenance import write_json
from .samplers import ArchListSampler, PathSampler, make_data_sampler
from .samplers import make_path_sampler as make_sampler_over_ops
from .spaces.nb201 import NB201_OPS, NUM_EDGES, NB201Supernet, SearchCell, product_index_to_arch
from .training import Trainer, TrainingError

GROUPINGS = ("none", "edge", "gm", "random")


@dataclass
class FamilyConfig:
    """How the arch space is shared out among sub-supernets, and when they split."""

    grouping: str = "none"            # none (one-shot) | edge (one member per op of `edge`: Few-Shot NAS) |
    #                                   gm (gradient matching: GM-NAS) | random (random arch groups: the control)
    split_epochs: tuple = ()          # before which family epochs every member splits ((0,): members from scratch)
    edge: int = 0                     # edge of grouping=edge (Few-Shot NAS NB201: edge 0)
    random_fractions: tuple = (0.4, 0.6)  # random: shares of a member's archs its children get (GM on NB201: 2/5, 3/5)
    share_prefix: int = -1            # -1: members share nothing; k >= 0: stem + first k search cells shared
    gm_batches: int = 100             # GM: batches the gradient distance is averaged over (reference 100)
    gm_first_group: int = 2           # GM: ops in the first group of a cut (NB201 reference: 2 and 3)
    reinit_last_split: bool = False   # children of the last split start from fresh weights and optimizer state
    #                                   (GM reference NB201: --restart final)
    restart_lr: bool = False          # at each split, a new cosine schedule from train.lr over the remaining steps
    #                                   (Few-Shot NAS trains each sub-supernet with its own schedule)

    def __post_init__(self):
        self.split_epochs = tuple(int(e) for e in self.split_epochs)
        self.random_fractions = tuple(float(f) for f in self.random_fractions)
        if self.grouping not in GROUPINGS:
            raise ConfigError(f"family.grouping={self.grouping!r} is unknown; choose one of {list(GROUPINGS)}")
        if list(self.split_epochs) != sorted(set(self.split_epochs)) or any(e < 0 for e in self.split_epochs):
            raise ConfigError(f"family.split_epochs={list(self.split_epochs)} must be distinct epochs >= 0 in order")
        if self.grouping == "none" and self.split_epochs:
            raise ConfigError("family.grouping=none never splits: set a grouping or split_epochs=()")
        if self.grouping == "edge" and len(self.split_epochs) > 1:
            raise ConfigError("family.grouping=edge splits one edge once: give one split epoch")
        if not 0 <= self.edge < NUM_EDGES:
            raise ConfigError(f"family.edge={self.edge} must be an edge index in [0, {NUM_EDGES})")
        if len(self.random_fractions) < 2 or any(f <= 0 for f in self.random_fractions) or \
                not math.isclose(sum(self.random_fractions), 1.0):
            raise ConfigError(f"family.random_fractions={list(self.random_fractions)} must be >= 2 positive shares "
                              "summing to 1")
        if self.gm_batches < 1:
            raise ConfigError(f"family.gm_batches must be >= 1, got {self.gm_batches}")

    def to_dict(self) -> dict:
        return json.loads(json.dumps(dataclasses.asdict(self)))


# ------------------------------------------------------------------------------------------------ members
@dataclass
class Member:
    """One sub-supernet's share of the space: an ``allowed`` mask [edges][ops] or an explicit list of arch indices."""

    name: str                                    # its place in the split tree, e.g. "0.1" (root "0")
    allowed: list[list[bool]] | None = None      # edge e may use op j
    archs: list[int] | None = None               # arch indices (enumerate_archs order), for random groups
    split_edges: list[int] = field(default_factory=list)  # edges a GM/Few-Shot split has already cut

    def arch_indices(self, ops: Sequence[str]) -> np.ndarray:
        """The indices of every arch this member owns (sorted)."""
        if self.archs is not None:
            return np.asarray(self.archs, dtype=np.int64)
        codes = [np.flatnonzero(row) for row in self.allowed]
        k = len(ops)
        index = np.zeros(1, dtype=np.int64)
        for row in codes:                                   # edge 0 most significant, as arch_to_product_index
            index = (index[:, None] * k + row[None, :]).reshape(-1)
        return np.sort(index)


def full_member(ops: Sequence[str]) -> Member:
    """The one-shot supernet: every op on every edge."""
    return Member("0", allowed=[[True] * len(ops) for _ in range(NUM_EDGES)])


def routing_table(members: Sequence[Member], ops: Sequence[str]) -> np.ndarray:  # [K**E] member of every arch
    """The member that owns every arch; an error unless every arch has exactly one owner."""
    size = len(ops) ** NUM_EDGES
    owner = np.full(size, -1, dtype=np.int64)
    count = np.zeros(size, dtype=np.int64)
    for m, member in enumerate(members):
        idx = member.arch_indices(ops)
        owner[idx] = m
        np.add.at(count, idx, 1)
    if not (count == 1).all():
        raise ValueError(f"{int((count == 0).sum())} archs have no member and {int((count > 1).sum())} more than one")
    return owner


def split_by_edge(member: Member, edge: int, groups: Sequence[Sequence[int]]) -> list[Member]:
    """Children of a mask member, child c keeping ops ``groups[c]`` of ``edge``."""
    if member.allowed is None:
        raise ValueError("only a member with per-edge op sets can be split along an edge")
    children = []
    for c, group in enumerate(groups):
        allowed = [list(row) for row in member.allowed]
        allowed[edge] = [j in group and allowed[edge][j] for j in range(len(allowed[edge]))]
        children.append(Member(f"{member.name}.{c}", allowed=allowed, split_edges=member.split_edges + [edge]))
    return children


def split_randomly(member: Member, ops: Sequence[str], fractions: Sequence[float],
                   generator: torch.Generator) -> list[Member]:
    """Children owning random disjoint shares (``fractions``) of the member's archs."""
    idx = member.arch_indices(ops)
    perm = idx[torch.randperm(len(idx), generator=generator).numpy()]
    cuts = np.round(np.cumsum(fractions)[:-1] * len(idx)).astype(int)
    return [Member(f"{member.name}.{c}", archs=sorted(part.tolist()))
            for c, part in enumerate(np.split(perm, cuts))]


# ------------------------------------------------------------------------------------------------ the model
class FamilySupernet(nn.Module):
    """The members' supernets under one module; ``forward(x, arch)`` runs the member that owns ``arch``."""

    def __init__(self, members: Sequence[NB201Supernet], owner: np.ndarray):
        super().__init__()
        self.members = nn.ModuleList(members)
        self.owner = owner                                  # [K**E] member of every arch index
        self.ops = members[0].ops
        k = len(self.ops)
        self._weights = [k ** (NUM_EDGES - 1 - e) for e in range(NUM_EDGES)]
        self._code = {op: j for j, op in enumerate(self.ops)}

    def member_of(self, arch: Sequence[str]) -> int:
        """The index of the member that owns ``arch``."""
        return int(self.owner[sum(w * self._code[op] for w, op in zip(self._weights, arch))])

    def forward(self, x: torch.Tensor, arch: Sequence[str]) -> torch.Tensor:
        return self.members[self.member_of(arch)](x, tuple(arch))


def prefix_layers(model: NB201Supernet, k: int) -> int:
    """How many leading layers of ``model.cells`` hold its first ``k`` search cells (and the blocks between)."""
    if k <= 0:
        return 0
    seen = 0
    for i, layer in enumerate(model.cells):
        seen += isinstance(layer, SearchCell)
        if seen == k:
            return i + 1
    raise ConfigError(f"family.share_prefix={k} but the supernet has only {seen} search cells")


def share_prefix(child: NB201Supernet, parent: NB201Supernet, k: int) -> None:
    """Point ``child``'s stem and first ``k`` search cells at ``parent``'s modules (one set of weights)."""
    if k < 0:
        return
    child.stem = parent.stem
    for i in range(prefix_layers(parent, k)):
        child.cells[i] = parent.cells[i]


@torch.no_grad()
def evaluate_family(model: FamilySupernet, archs: Sequence[tuple], data: ImageData, batch_size: int = 1000,
                    amp: bool = False) -> np.ndarray:
    """Top-1 accuracy (%) of every arch with the weights of the member that owns it (the fast evaluator per member)."""
    from .evaluation import evaluate_archs
    archs = [tuple(a) for a in archs]
    owner = np.array([model.member_of(a) for a in archs])
    acc = np.zeros(len(archs))
    for m in np.unique(owner):
        where = np.flatnonzero(owner == m)
        acc[where] = evaluate_archs(model.members[int(m)], [archs[i] for i in where], data, batch_size, amp)
    return acc


# ------------------------------------------------------------------------------------------------ samplers
class RoutedPathSampler:
    """The path samplers of the members; the trainer sets ``active`` before each step."""

    def __init__(self, samplers: list):
        self.samplers, self.active = samplers, 0

    def start_epoch(self, epoch: int, num_epochs: int) -> None:
        for sampler in self.samplers:
            sampler.start_epoch(epoch, num_epochs)

    def sample(self, generator=None):
        return self.samplers[self.active].sample(generator)

    def observe(self, model: FamilySupernet, archs) -> None:
        self.samplers[self.active].observe(model.members[self.active], archs)

    def probabilities(self) -> torch.Tensor:
        return self.samplers[self.active].probabilities()

    def state_dict(self) -> dict:
        return {"members": [s.state_dict() for s in self.samplers]}

    def load_state_dict(self, state: dict) -> None:
        if len(state["members"]) != len(self.samplers):
            raise TrainingError(f"the checkpoint has {len(state['members'])} member samplers, the family "
                                f"{len(self.samplers)}: resume with the config that wrote it")
        for sampler, sub in zip(self.samplers, state["members"]):
            sampler.load_state_dict(sub)


class RoutedDataSampler(RoutedPathSampler):
    """The data samplers of the members: each draws its own epoch order (DA inside every member)."""

    def epoch_order(self, epoch: int, num_epochs: int) -> list[torch.Tensor]:  # one [N] order per member
        return [sampler.epoch_order(epoch, num_epochs) for sampler in self.samplers]

    def observe(self, indices, logits, labels) -> None:
        self.samplers[self.active].observe(indices, logits, labels)

    def loss_weights(self, indices):
        return self.samplers[self.active].loss_weights(indices)

    def probabilities(self) -> torch.Tensor:
        return self.samplers[self.active].probabilities()


# ------------------------------------------------------------------------------------------------ training
class FamilyTrainer(Trainer):
    """Train a supernet family with :class:`~pada_lite.training.Trainer`'s loop (splits happen at epoch starts)."""

    def __init__(self, config: RunConfig, family: FamilyConfig, run_dir=None, splits=None, epoch_callbacks=None):
        if tuple(config.space.ops) != tuple(NB201_OPS) and family.grouping != "none":
            raise ConfigError("a split family routes the whole NB201 space: keep space.ops at all five ops")
        if config.train.path_sampler == "fair" and family.grouping != "none":
            raise ConfigError("train.path_sampler=fair cannot restrict choices: use uniform or importance in a family")
        if any(e >= config.train.epochs for e in family.split_epochs):
            raise ConfigError(f"family.split_epochs={list(family.split_epochs)} must lie before train.epochs="
                              f"{config.train.epochs}")
        super().__init__(config, run_dir, splits, epoch_callbacks)
        self.family = family
        self.root_model = self.model
        self.members = [full_member(config.space.ops)]
        self.splits_done, self.split_log = 0, []
        self._install([self.root_model], [self.path_sampler], [self.data_sampler], rebuild_optimizer=False)

    # ---------------------------------------------------------------------------------- structure
    def _install(self, models, path_samplers, data_samplers, rebuild_optimizer: bool = True) -> None:
        self.model = FamilySupernet(models, routing_table(self.members, self.config.space.ops))
        self.path_sampler = RoutedPathSampler(path_samplers)
        self.data_sampler = RoutedDataSampler(data_samplers)
        if rebuild_optimizer:
            tc = self.config.train
            self.optimizer = torch.optim.SGD(self.model.parameters(), lr=tc.lr, momentum=tc.momentum,
                                             nesterov=tc.nesterov, weight_decay=tc.weight_decay)
            self.scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(
                self.optimizer, T_max=tc.epochs * self.steps_per_epoch, eta_min=tc.lr_min)

    def _path_sampler_for(self, member: Member):
        tc, ops = self.config.train, self.config.space.ops
        if member.archs is not None:
            archs = [product_index_to_arch(i, ops) for i in member.archs]
            return ArchListSampler(make_sampler_over_ops(tc, ops, self.sample_gen), archs)
        return make_sampler_over_ops(tc, ops, self.sample_gen, allowed=torch.tensor(member.allowed))

    def _data_sampler_for(self):
        return make_data_sampler(self.config.train, self.train_data.labels.cpu(), self.data_gen)

    def _child_model(self, parent: NB201Supernet, fresh: bool) -> NB201Supernet:
        child = (NB201Supernet(parent.config) if fresh else copy.deepcopy(parent)).to(self.device)
        share_prefix(child, parent, self.family.share_prefix)
        return child

    # ---------------------------------------------------------------------------------- splitting
    def split(self) -> None:
        """Split every member as the family config says; children inherit weights, optimizer and sampler state."""
        fc = self.family
        last = self.splits_done == len(fc.split_epochs) - 1
        fresh = fc.reinit_last_split and last
        old_models, old_paths, old_data = list(self.model.members), self.path_sampler.samplers, \
            self.data_sampler.samplers
        old_opt_state, lr = self.optimizer.state, self.optimizer.param_groups[0]["lr"]
        scheduler_state = self.scheduler.state_dict()
        members, models, paths, datas, inherited = [], [], [], [], {}
        for m, member in enumerate(self.members):
            children = self._children(member, old_models[m], old_paths[m])
            for c, child in enumerate(children):
                model = old_models[m] if c == 0 and not fresh else self._child_model(old_models[m], fresh)
                if not fresh:
                    for p_child, p_parent in zip(model.parameters(), old_models[m].parameters()):
                        if p_parent in old_opt_state:
                            inherited[p_child] = copy.deepcopy(old_opt_state[p_parent])
                path = self._path_sampler_for(child)
                path.load_state_dict(old_paths[m].state_dict())
                data = self._data_sampler_for()
                data.load_state_dict(old_data[m].state_dict())
                members.append(child), models.append(model), paths.append(path), datas.append(data)
        self.members = members
        self._install(models, paths, datas)
        for p in self.model.parameters():
            if p in inherited:
                self.optimizer.state[p] = inherited[p]
        if fc.restart_lr:
            self._restart_cosine((self.config.train.epochs - self.epoch) * self.steps_per_epoch)
        else:
            self.scheduler.load_state_dict(scheduler_state)
            for group in self.optimizer.param_groups:
                group["lr"] = lr
        self.splits_done += 1

    def _restart_cosine(self, remaining: int) -> None:
        """A fresh cosine schedule from train.lr to train.lr_min over the ``remaining`` steps."""
        tc = self.config.train
        for group in self.optimizer.param_groups:
            group["lr"] = group["initial_lr"] = tc.lr
        self.scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(self.optimizer, T_max=remaining, eta_min=tc.lr_min)

    def _children(self, member: Member, model: NB201Supernet, path_sampler) -> list[Member]:
        fc, ops = self.family, self.config.space.ops
        if fc.grouping == "edge":
            children = split_by_edge(member, fc.edge, [[j] for j in range(len(ops))])
        elif fc.grouping == "random":
            children = split_randomly(member, ops, fc.random_fractions, self.sample_gen)
        if fc.grouping != "gm":
            self.split_log.append({"epoch": self.epoch, "member": member.name, "grouping": fc.grouping,
                                   "children": {c.name: len(c.arch_indices(ops)) for c in children}})
            return children
        from .gradient_matching import choose_split
        unsplit = [e for e in range(NUM_EDGES) if e not in member.split_edges]
        choice = choose_split(model, unsplit, ops, lambda: self._gm_draw(path_sampler), fc.gm_batches,
                              fc.gm_first_group)
        groups = [[ops.index(op) for op in group] for group in choice.groups]
        children = split_by_edge(member, choice.edge, groups)
        self.split_log.append({"epoch": self.epoch, "member": member.name, "grouping": "gm",
                               "children": {c.name: len(c.arch_indices(ops)) for c in children}, **choice.to_dict()})
        return children

    def _gm_draw(self, path_sampler) -> tuple[torch.Tensor, torch.Tensor, tuple]:
        """One GM draw: a fresh training batch and a path of the member (uniform over its archs)."""
        n = len(self.train_data)
        idx = torch.randint(n, (min(self.config.train.batch_size, n),), generator=self.sample_gen)
        x, y = self.train_data.batch(idx, self.config.data.augment, self.augment_gen)
        uniform = PathSampler(self.config.space.ops, self.sample_gen, allowed=getattr(path_sampler, "allowed", None))
        return x, y, uniform.sample()[0][0]

    # ---------------------------------------------------------------------------------- the loop's hooks
    def run_epoch(self) -> dict:
        if self.step == 0:
            while self.splits_done < len(self.family.split_epochs) and \
                    self.family.split_epochs[self.splits_done] <= self.epoch:
                self.split()
        summary = super().run_epoch()
        summary["members"] = len(self.members)
        return summary

    def epoch_batches(self) -> list[torch.Tensor]:
        """Step b trains member b mod M on that member's next batch (its own epoch order)."""
        size, count = self.config.train.batch_size, len(self.members)
        own = [order.to(self.device).split(size) for order in self.order]
        return [own[b % count][b // count] for b in range(self.steps_per_epoch)]

    def train_step(self, x, y, idx, stats) -> None:
        self.path_sampler.active = self.data_sampler.active = self.step % len(self.members)
        super().train_step(x, y, idx, stats)

    # ---------------------------------------------------------------------------------- checkpoints
    def structure(self) -> dict:
        """The family's members and split record (what a checkpoint needs to rebuild the modules)."""
        return {"family_config": self.family.to_dict(), "splits_done": self.splits_done,
                "members": [dataclasses.asdict(m) for m in self.members], "split_log": self.split_log}

    def state_dict(self) -> dict:
        return {**super().state_dict(), "family": self.structure()}

    def load_state_dict(self, state: dict) -> None:
        saved = state.get("family")
        if saved is None or saved["family_config"] != self.family.to_dict():
            raise TrainingError("the checkpoint belongs to another family config (or to a single supernet): use a "
                                "new run folder, or delete the checkpoint to start over")
        self._rebuild(saved)
        super().load_state_dict(state)

    def _rebuild(self, saved: dict) -> None:
        """Recreate the saved members' modules, samplers and optimizer (values come from the checkpoint)."""
        self.members = [Member(**m) for m in saved["members"]]
        self.splits_done, self.split_log = saved["splits_done"], saved["split_log"]
        if len(self.members) == 1:
            return
        models = [self._child_model(self.root_model, fresh=False) for _ in self.members]
        self._install(models, [self._path_sampler_for(m) for m in self.members],
                      [self._data_sampler_for() for _ in self.members])

    def run(self, resume: bool = True):
        result = super().run(resume)
        if self.run_dir is not None:
            write_json(self.run_dir / "family.json", self.structure())
        return result


def train_family(config: RunConfig, family: FamilyConfig, run_dir=None, splits=None, resume: bool = True,
                 epoch_callbacks=None) -> tuple[FamilyTrainer, object]:
    """Train a family (resuming ``run_dir`` if it holds a checkpoint); returns the trainer and its TrainResult."""
    trainer = FamilyTrainer(config, family, run_dir, splits, epoch_callbacks)
    return trainer, trainer.run(resume=resume)


# ------------------------------------------------------------------------------------------------ presets
@dataclass
class FamilyPreset:
    """A run config and a family config that belong together."""

    run: RunConfig
    family: FamilyConfig


def _nb201_cifar10_run(name: str, epochs: int, weight_decay: float) -> RunConfig:
    """The paper preset's NB201 space and CIFAR-10 data, trained as both splitting papers do: SGD Nesterov, lr
    0.025 -> 0.001 cosine, batch 48, clip 5, AMP and channels_last on CUDA (rank settings: the defaults)."""
    base = paper()
    return RunConfig(name=name, space=base.space, data=base.data,
                     train=TrainConfig(epochs=epochs, batch_size=48, lr=0.025, lr_min=0.001, nesterov=True,
                                       weight_decay=weight_decay, grad_clip=5.0, amp=True, channels_last=True))


def few_shot_nb201() -> FamilyPreset:
    """Few-Shot NAS on NB201 / CIFAR-10 (aoiang/few-shot-NAS): a 600-epoch one-shot supernet, then edge 0 split into
    five sub-supernets trained 300 epochs each; SGD Nesterov, lr 0.025 -> 0.001 cosine, wd 1e-4, batch 48.

    A family epoch is one one-shot epoch of steps shared by the members, so 300 epochs per member after the split
    are 5 x 300 = 1500 family epochs: 2100 in all, the split at 600, a new cosine schedule at the split."""
    run = _nb201_cifar10_run("few-shot-nb201", epochs=2100, weight_decay=1e-4)
    return FamilyPreset(run, FamilyConfig(grouping="edge", edge=0, split_epochs=(600,), restart_lr=True))


def gm_nb201() -> FamilyPreset:
    """GM-NAS on NB201 / CIFAR-10 (skhu101/GM-NAS, WS-GM/nasbench201 with --fs_opt 1): splits at epochs 15 and 30 into
    four sub-supernets, 60 epochs, Nesterov, batch 48, wd 5e-4, 100 batches per distance, children re-initialised
    at the last split (--restart final). The reference trains every sub-supernet a full epoch per epoch; at that
    ratio a family needs 15 + 2 x 15 + 4 x 30 = 165 family epochs, the splits at 15 and 45."""
    run = _nb201_cifar10_run("gm-nb201", epochs=165, weight_decay=5e-4)
    return FamilyPreset(run, FamilyConfig(grouping="gm", split_epochs=(15, 45), gm_batches=100,
                                          reinit_last_split=True))


def lite_family(grouping: str, epochs: int, **kw) -> FamilyConfig:
    """The lite tier's family of ``grouping`` over ``epochs`` family epochs, with the papers' split points scaled:
    Few-Shot splits after 600 of 2100 epochs (2/7), GM after 15 and 30 of 60 (1/4, 1/2)."""
    if grouping == "edge":
        return FamilyConfig(grouping="edge", split_epochs=(round(epochs * 2 / 7),), **kw)
    if grouping == "gm":
        return FamilyConfig(grouping="gm", split_epochs=(round(epochs / 4), round(epochs / 2)), **kw)
    return FamilyConfig(grouping=grouping, **kw)


FAMILY_PRESETS = {"few-shot-nb201": few_shot_nb201, "gm-nb201": gm_nb201}
