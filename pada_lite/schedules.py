"""The smoothing weight τ of PA&DA and the rule that mixes scores with the uniform distribution.

Both PA (ops) and DA (samples) turn non-negative scores ``s`` into sampling probabilities with

    p = τ · s / Σ s + (1 − τ) / K          (K = number of entries)

where τ ∈ [0, 1] follows a schedule over the epochs. A schedule spec is one of

- a number in [0, 1]: constant τ;
- a name: ``"linear"`` (τ = e/E, the reference), ``"cosine"`` (τ = (1 − cos(π e/E)) / 2), ``"step"``
  (0 for the first half of training, 1 after);
- a dict ``{"name": ..., **options}``: ``constant`` (value), ``linear`` / ``cosine`` (start=0, end=1),
  ``step`` (milestones=[0.5] as fractions e/E, values=[0, 1]: τ = values[#milestones <= e/E]);
- a callable ``(epoch, num_epochs) -> τ``.

**When τ is applied.** The reference updates both distributions at the *end* of epoch ``e`` from the scores
recorded during ``e``, with that epoch's τ(e) = e/E; epoch ``e + 1`` samples from the result, and epoch 0 samples
uniformly (no scores yet). So with the linear schedule epochs 0 and 1 are uniform and epoch e ≥ 1 uses
τ = (e − 1)/E: :func:`tau_for_epoch` (used by the samplers) and :func:`distributions_after_epoch` (the book's
widget) both encode that rule, with :func:`mix_with_uniform`.
"""
from __future__ import annotations

import math
import numbers
import warnings
from typing import Any, Callable, Sequence

import torch

from .config import ConfigError

Schedule = Callable[[int, int], float]
SCHEDULE_NAMES = ("constant", "linear", "cosine", "step")
_OPTIONS = {"constant": {"value"}, "linear": {"start", "end"}, "cosine": {"start", "end"},
            "step": {"milestones", "values"}}
_FIX = "use a number in [0, 1], one of " + ", ".join(repr(n) for n in SCHEDULE_NAMES[1:]) + \
       ", a dict such as {'name': 'step', 'milestones': [0.5], 'values': [0.0, 1.0]}, or a callable (epoch, num_epochs)"


class ScheduleError(ConfigError):
    """Raised for an invalid τ or τ schedule; the message names the value and the fix."""


class ScoreError(ValueError):
    """Raised for scores that cannot define a distribution (NaN, inf, negative)."""


def check_tau(tau: Any, where: str = "") -> float:
    """``tau`` as a float in [0, 1], else a ScheduleError naming it (and ``where`` it came from)."""
    prefix = f"{where}: " if where else ""
    if isinstance(tau, bool) or not isinstance(tau, numbers.Real):
        raise ScheduleError(f"{prefix}tau={tau!r} is not a number: tau must be a float in [0, 1]")
    value = float(tau)
    if not math.isfinite(value) or not 0.0 <= value <= 1.0:
        raise ScheduleError(f"{prefix}tau={value} is outside [0, 1]: tau mixes normalised scores with the uniform "
                            "distribution (0 = uniform, 1 = scores only), so it must lie in [0, 1]")
    return value


def make_schedule(spec: Any) -> Schedule:
    """A validated schedule ``(epoch, num_epochs) -> τ`` from a number, name, dict or callable."""
    if callable(spec):
        return _validated(spec, getattr(spec, "__name__", "callable"))
    if isinstance(spec, numbers.Real) and not isinstance(spec, bool):
        return _build("constant", {"value": spec})
    if isinstance(spec, str):
        if spec == "constant":
            raise ScheduleError("tau='constant' needs a value: give the number itself, e.g. tau=0.5")
        return _build(spec, {})
    if isinstance(spec, dict):
        options = dict(spec)
        return _build(options.pop("name", None), options)
    raise ScheduleError(f"tau={spec!r} is not a schedule: {_FIX}")


def _build(name: Any, options: dict) -> Schedule:
    if name not in SCHEDULE_NAMES:
        raise ScheduleError(f"unknown tau schedule {name!r}: {_FIX}")
    unknown = set(options) - _OPTIONS[name]
    if unknown:
        raise ScheduleError(f"tau schedule {name!r} has no option(s) {sorted(unknown)}; "
                            f"its options are {sorted(_OPTIONS[name])}")
    if name == "constant":
        value = check_tau(options.get("value"), "constant schedule")
        return _validated(lambda epoch, num_epochs: value, f"constant {value}")
    if name == "step":
        return _validated(_step(**options), "step")
    start = check_tau(options.get("start", 0.0), f"{name} schedule start")
    end = check_tau(options.get("end", 1.0), f"{name} schedule end")
    shape = _linear_shape if name == "linear" else _cosine_shape
    return _validated(lambda epoch, num_epochs: start + (end - start) * shape(_progress(epoch, num_epochs)), name)


def _step(milestones: Sequence[float] = (0.5,), values: Sequence[float] = (0.0, 1.0)) -> Schedule:
    milestones = [float(m) for m in milestones]
    if len(values) != len(milestones) + 1:
        raise ScheduleError(f"tau step schedule: {len(milestones)} milestones need {len(milestones) + 1} values, "
                            f"got {list(values)}")
    if milestones != sorted(milestones) or any(not 0.0 <= m <= 1.0 for m in milestones):
        raise ScheduleError(f"tau step milestones {milestones} must be increasing fractions e/E in [0, 1]")
    values = [check_tau(v, "step schedule value") for v in values]
    return lambda epoch, num_epochs: values[sum(_progress(epoch, num_epochs) >= m for m in milestones)]


def _linear_shape(t: float) -> float:
    return t


def _cosine_shape(t: float) -> float:
    return (1.0 - math.cos(math.pi * t)) / 2.0


def _progress(epoch: int, num_epochs: int) -> float:
    """e / E clipped to [0, 1]."""
    return min(max(epoch / num_epochs, 0.0), 1.0)


def _validated(fn: Callable, label: str) -> Schedule:
    """Wrap ``fn`` so that its arguments and every value it returns are checked."""

    def schedule(epoch: int, num_epochs: int) -> float:
        if int(num_epochs) < 1 or int(epoch) < 0:
            raise ScheduleError(f"tau schedule called with epoch={epoch}, num_epochs={num_epochs}: "
                                "need 0 <= epoch and num_epochs >= 1")
        return check_tau(fn(int(epoch), int(num_epochs)), f"schedule {label} at epoch {epoch} of {num_epochs}")

    schedule.label = label
    return schedule


def tau_for_epoch(schedule: Schedule, epoch: int, num_epochs: int) -> float:
    """τ of the distribution sampled in ``epoch``: built at the end of epoch − 1 with τ(epoch − 1) (reference)."""
    return schedule(max(epoch - 1, 0), num_epochs)


# ------------------------------------------------------------------------------------------ scores -> p
def mix_with_uniform(scores: Any, tau: float, describe: Callable[[tuple], str] | None = None) -> torch.Tensor:
    """``τ · s / Σ s + (1 − τ) / K`` along the last dim (float64, CPU); all-zero rows fall back to uniform."""
    tau = check_tau(tau)
    scores = torch.as_tensor(scores).detach().to("cpu", torch.float64)
    if scores.ndim == 0 or scores.shape[-1] == 0:
        raise ScoreError(f"cannot build a distribution from scores of shape {tuple(scores.shape)}: no entries")
    check_scores(scores, describe)
    total = scores.sum(-1, keepdim=True)
    zero = total == 0
    if tau > 0 and bool(zero.any()):
        rows = "every row" if bool(zero.all()) else f"{int(zero.sum())} of {zero.numel()} rows"
        warnings.warn(f"all scores are zero in {rows} (nothing scored yet, e.g. no parametric op was sampled): "
                      "sampling those uniformly", RuntimeWarning, stacklevel=2)
    k = scores.shape[-1]
    normalised = torch.where(zero, torch.full_like(scores, 1.0 / k), scores / torch.where(zero, 1.0, total))
    return tau * normalised + (1.0 - tau) / k


def check_scores(scores: torch.Tensor, describe: Callable[[tuple], str] | None = None) -> None:
    """Raise a ScoreError naming the first NaN, infinite or negative score."""
    bad = ~torch.isfinite(scores) | (scores < 0)
    if not bool(bad.any()):
        return
    index = tuple(int(i) for i in bad.nonzero()[0])
    name = describe(index) if describe else f"entry {index if len(index) > 1 else index[0]}"
    value = float(scores[index])
    cause = ("the gradients or logits became NaN/inf: lower train.lr, keep train.grad_clip > 0, or disable "
             "train.amp" if not math.isfinite(value) else "scores are norms and must be >= 0")
    raise ScoreError(f"{name} has score {value}: {cause}")


def distributions_after_epoch(op_scores: Any, sample_scores: Any, schedule: Any, epoch: int,
                              num_epochs: int) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """PA op distribution ([K] or [E, K]) and DA sample distribution ([N]) computed at the end of ``epoch``.

    ``op_scores`` / ``sample_scores`` are the scores recorded during ``epoch`` (either may be None); they are mixed
    with τ = schedule(epoch, num_epochs), and epoch ``epoch + 1`` samples from the result.
    """
    tau = make_schedule(schedule)(epoch, num_epochs)
    p = None if op_scores is None else mix_with_uniform(op_scores, tau)
    q = None if sample_scores is None else mix_with_uniform(sample_scores, tau)
    return p, q
