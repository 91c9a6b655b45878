"""Per-step cost of PA&DA's samplers vs SPOS on the lite preset, in one process, interleaved to beat noise.

Four trainers share the data and advance in rounds of ``--chunk`` steps each; the two trainers of a pair run
back to back (which one first alternates), so both chunks of a pair see the same load from other processes:

- SPOS and PA&DA (importance path x importance data) as configured: the *raw* ratio. PA&DA changes which archs are
  trained (with the reference τ schedule they are uniform for two epochs, then drift towards conv-heavy archs), which
  is not sampler overhead;
- SPOS and PA&DA whose samplers do all their work but whose archs are replaced by one shared pre-drawn uniform
  sequence: the *matched-arch* ratio, the overhead alone;
- besides, every sampler call (start_epoch, sample, observe, epoch_order, loss_weights) is timed directly.

Ratios: median (and quartiles) over rounds of the ratio of a pair's adjacent chunk times, and the ratio of totals.
Times are this process's CPU time by default (``--clock cpu``: with one thread it is what a step costs, whatever else
the machine runs); ``--clock wall`` uses wall-clock time.

    .venv/bin/python benchmarks/bench_overhead.py [--epochs 3] [--chunk 4] [--threads 1] [--clock cpu|wall]
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch

from pada_lite.config import lite, override
from pada_lite.data import load_splits
from pada_lite.samplers import PathSampler
from pada_lite.training import Trainer

CLOCKS = {"cpu": time.process_time, "wall": time.perf_counter}
PAIRS = (("SPOS", "PA&DA"), ("SPOS matched", "PA&DA matched"))
SAMPLER_CALLS = {"path_sampler": ("start_epoch", "sample", "observe"),
                 "data_sampler": ("epoch_order", "observe", "loss_weights")}


class SteppedRun:
    """Drives a Trainer step by step through its epochs, timing chunks of steps and every sampler call."""

    def __init__(self, name: str, trainer: Trainer, clock):
        self.name, self.trainer, self.clock = name, trainer, clock
        self.epoch, self.batches, self.next_batch = 0, [], 0
        self.stats = torch.zeros(3, device=trainer.device)
        self.chunk_times: list[float] = []
        self.steps = 0
        self.sampler_seconds = 0.0
        self.seconds_by_call: dict[str, float] = {}
        for attribute, methods in SAMPLER_CALLS.items():
            for method in methods:
                self._time_calls(getattr(trainer, attribute), method, f"{attribute}.{method}")

    def _time_calls(self, sampler, method: str, label: str) -> None:
        inner = getattr(sampler, method)

        def timed(*args, **kwargs):
            start = self.clock()
            try:
                return inner(*args, **kwargs)
            finally:
                seconds = self.clock() - start
                self.sampler_seconds += seconds
                self.seconds_by_call[label] = self.seconds_by_call.get(label, 0.0) + seconds

        setattr(sampler, method, timed)

    def run_steps(self, count: int) -> None:
        tr, tc = self.trainer, self.trainer.config.train
        start = self.clock()
        for _ in range(count):
            if self.next_batch == len(self.batches):
                tr.path_sampler.start_epoch(self.epoch, tc.epochs)
                self.batches = tr.data_sampler.epoch_order(self.epoch, tc.epochs).split(tc.batch_size)
                self.epoch, self.next_batch = self.epoch + 1, 0
            idx = self.batches[self.next_batch]
            x, y = tr.train_data.batch(idx, tr.config.data.augment, tr.augment_gen)
            tr.train_step(x, y, idx.to(tr.device), self.stats)
            self.next_batch += 1
        self.chunk_times.append((self.clock() - start) / count)
        self.steps += count


def replay_archs(sampler: PathSampler, archs: list[tuple]) -> None:
    """Let ``sampler`` do its own sampling work but train ``archs`` in order (same weights as it chose)."""
    own_sample, queue = sampler.sample, iter(archs)

    def sample(generator=None):
        return [(next(queue), weight) for _, weight in own_sample(generator)]

    sampler.sample = sample


def paired_ratios(runs: dict, numerator: str, denominator: str) -> tuple[float, float, float, float]:
    """(median, lower quartile, upper quartile) of the per-round ratios, and the ratio of total times."""
    ratios = [a / b for a, b in zip(runs[numerator].chunk_times, runs[denominator].chunk_times)]
    low, median, high = statistics.quantiles(ratios, n=4)
    return median, low, high, sum(runs[numerator].chunk_times) / sum(runs[denominator].chunk_times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3, help="epochs timed per trainer")
    parser.add_argument("--chunk", type=int, default=4, help="steps per trainer per round")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1 is fastest for lite on a busy CPU)")
    parser.add_argument("--clock", choices=sorted(CLOCKS), default="cpu", help="process CPU time or wall time")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    spos = override(lite(), ["train.progress=false", f"train.epochs={args.epochs}"])
    pada = override(spos, ["train.path_sampler=importance", "train.data_sampler=importance"])
    splits = load_splits(spos.data)
    runs = {name: SteppedRun(name, Trainer(config, splits=splits), CLOCKS[args.clock]) for name, config in
            (("SPOS", spos), ("PA&DA", pada), ("SPOS matched", spos), ("PA&DA matched", pada))}
    total_steps = args.epochs * runs["SPOS"].trainer.steps_per_epoch
    shared = [PathSampler(spos.space.ops, torch.Generator().manual_seed(123)).sample()[0][0]
              for _ in range(total_steps)]
    for name in ("SPOS matched", "PA&DA matched"):
        replay_archs(runs[name].trainer.path_sampler, shared)
    start = time.perf_counter()
    for round_index in range(total_steps // args.chunk):
        for pair in PAIRS:
            for name in pair if round_index % 2 == 0 else pair[::-1]:
                runs[name].run_steps(args.chunk)
    report(runs, args, time.perf_counter() - start)


def report(runs: dict, args, wall: float) -> None:
    steps = runs["SPOS"].steps
    print(f"lite preset, {args.epochs} epochs x {runs['SPOS'].trainer.steps_per_epoch} steps, batch "
          f"{runs['SPOS'].trainer.config.train.batch_size}, cpu, {torch.get_num_threads()} thread(s), "
          f"{args.clock} clock; {steps} steps per trainer in rounds of {args.chunk}; {wall:.0f} s in all")
    for name, run in runs.items():
        print(f"  {name:14s} median step {1e3 * statistics.median(run.chunk_times):7.2f} ms   "
              f"mean {1e3 * statistics.mean(run.chunk_times):7.2f} ms   "
              f"sampler calls {1e3 * run.sampler_seconds / run.steps:6.3f} ms/step")
    for label, (numerator, denominator) in (("raw (own archs)", PAIRS[0][::-1]), ("matched archs", PAIRS[1][::-1])):
        median, low, high, total = paired_ratios(runs, numerator, denominator)
        print(f"ratio PA&DA / SPOS, {label:16s} median {median:.4f} (quartiles {low:.4f}-{high:.4f}), "
              f"ratio of totals {total:.4f}")
    calls = runs["PA&DA matched"].seconds_by_call
    print("PA&DA sampler calls, ms/step: " + ", ".join(f"{k} {1e3 * v / steps:.3f}" for k, v in calls.items()))
    spos_step = statistics.median(runs["SPOS matched"].chunk_times)
    extra = (runs["PA&DA matched"].sampler_seconds - runs["SPOS matched"].sampler_seconds) / steps
    print(f"sampler-call time, PA&DA minus SPOS:       {1e3 * extra:.3f} ms/step = {100 * extra / spos_step:+.2f} % "
          f"of a SPOS step")
    verdict = "PASS" if 100 * extra / spos_step <= 3.0 else "FAIL"
    print(f"{verdict}: PA&DA sampler overhead {'<=' if verdict == 'PASS' else '>'} 3 % (measured by sampler-call time)")


if __name__ == "__main__":
    main()
