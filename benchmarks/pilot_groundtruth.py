"""Pilot of a stand-alone ground-truth setting: one group of evaluation archs, several seeds, noise vs spread.

    python benchmarks/pilot_groundtruth.py --name 16px_C4_2cells --set image_size=16 --set cells_per_stage=2

Each finished seed is saved to ``<out>/<name>.json`` at once (a rerun skips it). Prints the seed-to-seed Kendall
tau over the group, the spread (std of the mean accuracy over archs), the seed noise and the CPU time per network;
``--record`` adds that summary to the pilot record ``data/groundtruth/lite_pilot.json`` (the book's table).
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

import numpy as np
import torch

from pada_lite.benchmark import PILOT_RECORD, evaluation_archs, ground_truth_report, is_conv_only
from pada_lite.data import load_splits
from pada_lite.provenance import provenance
from pada_lite.spaces.nb201 import arch_to_str, str_to_arch
from pada_lite.standalone import StandaloneConfig, groups_of, train_and_evaluate


def parse_value(text: str):
    """int, float, None or the string itself."""
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return None if text == "None" else text


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--name", required=True)
    ap.add_argument("--set", action="append", default=[], help="StandaloneConfig field=value")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    ap.add_argument("--groups", type=int, nargs="+", default=[0], help="groups of evaluation_archs() to train")
    ap.add_argument("--out", default="data/groundtruth/pilot")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--record", action="store_true", help=f"add the summary to {PILOT_RECORD.name}")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    config = dataclasses.replace(StandaloneConfig.lite(), **{k: parse_value(v) for k, v in
                                                             (s.split("=", 1) for s in args.set)})
    groups = groups_of(evaluation_archs(), config.group_size)
    archs = [a for g in args.groups for a in groups[g]]
    path = Path(args.out) / f"{args.name}.json"
    record = json.loads(path.read_text()) if path.exists() else {"name": args.name, "config": config.to_dict(),
                                                                   "archs": [arch_to_str(a) for a in archs],
                                                                   "runs": {}}
    splits = load_splits(config.data_config())
    for seed in args.seeds:
        if str(seed) in record["runs"]:
            continue
        start = time.process_time()
        result = train_and_evaluate(archs, seed, config, splits)
        result["cpu_s_per_network"] = (time.process_time() - start) / len(archs)
        record["runs"][str(seed)] = result
        record.update(provenance(config.to_dict()))
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(record, indent=1))
        print(f"seed {seed}: {result['cpu_s_per_network']:.1f} CPU-s per network", flush=True)
    summary = summarise(record, args.seeds)
    for label in ("all", "conv_only", "sampled"):
        rep = summary["report_eval_acc"][label]
        print(f"{label:9s} n={rep['num_archs']:3d} tau={rep.get('seed_tau', float('nan')):.3f} "
              f"spread={rep.get('mean_acc_std', float('nan')):.2f} seed_std={rep.get('seed_std', float('nan')):.2f} "
              f"range={rep.get('mean_acc_min', 0):.1f}-{rep.get('mean_acc_max', 0):.1f}")
    print(f"train acc {summary['train_acc_mean']:.1f} %, {summary['cpu_s_per_network']:.1f} CPU-s per network")
    if args.record:
        pilot = json.loads(PILOT_RECORD.read_text())
        pilot["settings"][args.name] = summary
        PILOT_RECORD.write_text(json.dumps(pilot, indent=1) + "\n")


def summarise(record: dict, seeds) -> dict:
    """The pilot record's entry: config, per-subset reports (all / conv-only / sampled), cost, provenance."""
    runs = [record["runs"][str(s)] for s in seeds]
    as_ground_truth = {"seeds": list(seeds), "complete_seeds": list(seeds), "complete": True,
                       "eval_acc": {str(s): r["eval_acc"] for s, r in zip(seeds, runs)},
                       "conv_only": [is_conv_only(str_to_arch(a)) for a in record["archs"]]}
    return {"config": record["config"], "archs": record["archs"], "seed_eval_acc": as_ground_truth["eval_acc"],
            "report_eval_acc": ground_truth_report(as_ground_truth),
            "train_acc_mean": float(np.mean([r["train_acc"] for r in runs])),
            "cpu_s_per_network": float(np.mean([r["cpu_s_per_network"] for r in runs])),
            "provenance": {k: record.get(k) for k in ("pada_lite_version", "torch_version", "git_commit", "created")}}

if __name__ == "__main__":
    main()
