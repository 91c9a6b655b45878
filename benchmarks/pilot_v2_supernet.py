"""Pilot for the lite benchmark v2 supernet (issue 18): how long must SPOS train at the ground truth's own shape?

    python benchmarks/pilot_v2_supernet.py --epochs 200 --every 10 [--set train.lr=0.1 ...]

Trains one supernet of the v2 setting (NB201 at 8x8, C=4, 3 cells per stage, the ground truth's 20k training images)
and ranks the 105 v2 archs on 10k held-out images (never trained on by it or by the ground truth) every ``--every``
epochs, against the v2 ground truth as far as it is computed (mean over its complete seeds). Each run is resumable
(its Trainer checkpoint in ``runs/pilot_v2_supernet/<name>``); every evaluation is appended to
``data/results/pilot_v2_supernet/<name>.json`` with provenance.
"""
from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path

import numpy as np

from pada_lite.benchmark import PLANS, read_artifact
from pada_lite.config import RunConfig, override
from pada_lite.data import load_splits
from pada_lite.evaluation import evaluate_archs
from pada_lite.experiments import ranking_images, v2_base_config
from pada_lite.metrics import kendall_tau
from pada_lite.provenance import cpu_model, provenance, read_json, write_json
from pada_lite.spaces.nb201 import str_to_arch
from pada_lite.training import Trainer

REPO = Path(__file__).resolve().parent.parent
RECORDS = REPO / "data" / "results" / "pilot_v2_supernet"


def v2_config(epochs: int, sets: list[str]) -> RunConfig:
    """The v2 supernet (the ground truth's shape and images, ranked on 10k held-out images) for ``epochs``."""
    return override(dataclasses.replace(v2_base_config(train={"epochs": epochs}), name="v2-pilot"), sets)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=200)
    parser.add_argument("--every", type=int, default=10)
    parser.add_argument("--name", default="spos")
    parser.add_argument("--set", nargs="*", default=[])
    args = parser.parse_args()
    config = v2_config(args.epochs, args.set)
    gt = read_artifact(PLANS["v2"].artifact())
    archs = [str_to_arch(a) for a in gt["archs"]]
    truth = np.asarray(gt["mean_eval_acc"], dtype=float)
    splits = load_splits(config.data)
    heldout = ranking_images(config.rank, splits)
    path = RECORDS / f"{args.name}.json"
    run = read_json(path) if path.exists() else {"name": args.name, "points": []}

    def rank(trainer, summary):
        if trainer.epoch + 1 != args.epochs and (trainer.epoch + 1) % args.every:
            return {}
        start = time.process_time()
        acc = evaluate_archs(trainer.model, archs, heldout, config.rank.batch_size)
        point = {"epoch": trainer.epoch + 1, "tau": kendall_tau(truth, acc), "train_acc": summary["train_acc"],
                 "rank_cpu_s": time.process_time() - start, "train_elapsed_s": summary["elapsed_s"],
                 "gt_seeds": gt["complete_seeds"], "supernet_acc": [round(float(a), 3) for a in acc]}
        run["points"] = [p for p in run["points"] if p["epoch"] != point["epoch"]] + [point]
        run.update(provenance(config, config.train.seed, "cpu"), cpu=cpu_model())
        write_json(path, run)
        print(f"{args.name} epoch {point['epoch']}: tau {point['tau']:.3f} train acc {summary['train_acc']:.1f} "
              f"({summary['elapsed_s']:.0f} s training)", flush=True)
        return {"tau": point["tau"]}

    Trainer(config, REPO / "runs" / "pilot_v2_supernet" / args.name, splits, [rank]).run()


if __name__ == "__main__":
    main()
