"""Pilots for the lite benchmark v2 (issue 18, item 2): what a reliable ground truth costs on this CPU.

    python benchmarks/pilot_v2.py            # run the timing units not yet recorded, then print the pilot table
    python benchmarks/pilot_v2.py --table    # print the table from the record only

Two kinds of evidence, both written to ``data/groundtruth/pilot_v2.json`` (each timing unit is saved as soon as it
finishes, with provenance; a rerun skips it):

- **timing units** (measured here, single-threaded): CPU seconds per network-epoch of 10k images for candidate
  network shapes (resolution, width, cells per stage), from :func:`pada_lite.standalone.train_and_evaluate` on 8
  evaluation archs batched as the ground truth trains them (1 epoch of 2,048 images; 200 test images, whose
  evaluation is included);
- **reliability evidence** from the ground truths already measured: the v1 artifact (9 seeds, 169 archs) per arch
  subset -- split-half Kendall tau measured for 1..4 seeds per half, op-count fit, noise/spread -- and the earlier
  2-seed pilots on 16 archs (``data/groundtruth/pilot/``). Seeds needed for a split-half tau of 0.90 are projected
  from the measured 4-seed value (Spearman-Brown on sin(pi tau / 2); labelled projected).
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import subprocess
import time
from pathlib import Path

import numpy as np
import torch

from pada_lite.benchmark import read_artifact
from pada_lite.evalset import evaluation_archs
from pada_lite.metrics import kendall_tau
from pada_lite.provenance import cpu_model, provenance, write_json
from pada_lite.reliability import seeds_per_half_for, split_half_curve
from pada_lite.spaces.nb201 import arch_to_str, str_to_arch
from pada_lite.standalone import StandaloneConfig, train_and_evaluate
from pada_lite.yardsticks import op_count_fit

REPO = Path(__file__).resolve().parent.parent
RECORD = REPO / "data" / "groundtruth" / "pilot_v2.json"
OLD_PILOTS = REPO / "data" / "groundtruth" / "pilot"
SHAPES = {  # candidate network shapes (the supernet would train the same shape)
    "8px_C4_3cells": dict(image_size=8, channels=4, cells_per_stage=3),     # v1 ground truth
    "8px_C8_1cell": dict(image_size=8, channels=8, cells_per_stage=1),      # v1 supernet
    "16px_C4_3cells": dict(image_size=16, channels=4, cells_per_stage=3),
    "16px_C4_2cells": dict(image_size=16, channels=4, cells_per_stage=2),
    "16px_C8_1cell": dict(image_size=16, channels=8, cells_per_stage=1),
    "28px_C4_1cell": dict(image_size=28, channels=4, cells_per_stage=1),
    "28px_C4_3cells": dict(image_size=28, channels=4, cells_per_stage=3),
}
TIMING = dict(train_size=2048, test_size=200, heldout_size=0, epochs=1, group_size=8)
TIMING_ARCHS = 8
FOUR_SEED_PILOT = "16px_C4_3cells_12k_6ep"  # seeds 0, 1 in OLD_PILOTS; seeds 2, 3 in <RECORD without .json>/s2, s3


def timing_unit(shape: dict) -> dict:
    """Train TIMING_ARCHS evaluation archs for one short epoch; CPU seconds per network-epoch of 10k images."""
    config = dataclasses.replace(StandaloneConfig.lite(), **shape, **TIMING)
    archs = evaluation_archs()[:TIMING_ARCHS]
    result = train_and_evaluate(archs, 0, config)
    per_net_epoch_10k = result["cpu_time_s"] / len(archs) * 10000 / config.train_size
    return {"config": config.to_dict(), "archs": [arch_to_str(a) for a in archs], "cpu_time_s": result["cpu_time_s"],
            "wall_time_s": result["wall_time_s"], "cpu_s_per_network_epoch_10k": per_net_epoch_10k,
            "cpu": cpu_model(), **provenance(config.to_dict(), 0, "cpu")}


def noise_over_spread(acc: np.ndarray) -> float:
    """Seed noise (sd of one run around the arch's mean) over the spread of the arch means (sd over archs)."""
    noise = np.sqrt(acc.var(axis=0, ddof=1).mean())
    return float(noise / acc.mean(axis=0).std(ddof=1))


def v1_evidence() -> dict:
    """The v1 ground truth per arch subset: split-half curve, projected seeds for 0.90, op-count fit, cost."""
    payload = read_artifact()
    seeds = payload["complete_seeds"]
    acc = np.array([payload["eval_acc"][str(s)] for s in seeds])  # [S, N]
    archs = [str_to_arch(a) for a in payload["archs"]]
    conv = np.array(payload["conv_only"])
    epyc = [u["cpu_time_s"] for u in payload["units"].values() if "AMD EPYC" in (u.get("device") or "")
            and u.get("cpu_time_s")]
    config = payload["config"]
    per_net_epoch_10k = np.mean(epyc) / config["group_size"] / config["epochs"] * 10000 / config["train_size"]
    out = {"seeds": seeds, "cpu_s_per_network_epoch_10k_epyc": float(per_net_epoch_10k), "epyc_units": len(epyc),
           "config": config, "subsets": {}}
    for name, mask in (("all", np.ones(len(archs), bool)), ("sampled", ~conv), ("conv_only", conv)):
        curve = split_half_curve(acc[:, mask], range(1, 5))
        fit = op_count_fit([a for a, m in zip(archs, mask) if m], acc[:, mask].mean(0))
        out["subsets"][name] = {"num_archs": int(mask.sum()), "split_half_tau_by_seeds_per_half": curve,
                                "seeds_per_half_for_0.90_projected": seeds_per_half_for(curve[-1], len(curve)),
                                "noise_over_spread": noise_over_spread(acc[:, mask]), "op_count_fit": fit}
    return out


def old_pilot_evidence() -> dict:
    """The earlier 2-seed pilots on the first 16 evaluation archs: seed tau, noise/spread, op-count R^2, cost."""
    out = {}
    for path in sorted(OLD_PILOTS.glob("*.json")):
        record = json.loads(path.read_text())
        acc = np.array([run["eval_acc"] for run in record["runs"].values()])
        archs = [str_to_arch(a) for a in record["archs"]]
        c = record["config"]
        cpu_net = np.mean([run["cpu_s_per_network"] for run in record["runs"].values()])
        out[path.stem] = {"num_archs": len(archs), "seeds": len(acc), "seed_tau": kendall_tau(acc[0], acc[1]),
                          "noise_over_spread": noise_over_spread(acc),
                          "op_count_r2": op_count_fit(archs, acc.mean(0))["r2"],
                          "cpu_s_per_network_epoch_10k": float(cpu_net / c["epochs"] * 10000 / c["train_size"]),
                          "device": record.get("device")}
    return out


def four_seed_pilot_evidence() -> dict | None:
    """Split-half tau (2 + 2 seeds, measured) of the 16px pilot on its 16 archs, beside v1's on the same archs and
    seeds 0-3; None until seeds 2 and 3 exist."""
    runs = json.loads((OLD_PILOTS / f"{FOUR_SEED_PILOT}.json").read_text())["runs"]
    for seed in (2, 3):
        path = RECORD.with_suffix("") / f"s{seed}" / f"{FOUR_SEED_PILOT}.json"
        if not path.exists():
            return None
        runs.update(json.loads(path.read_text())["runs"])
    record = json.loads((OLD_PILOTS / f"{FOUR_SEED_PILOT}.json").read_text())
    acc = np.array([runs[str(s)]["eval_acc"] for s in range(4)])  # [4, 16]
    payload = read_artifact()
    position = [payload["archs"].index(a) for a in record["archs"]]
    v1 = np.array([[payload["eval_acc"][str(s)][k] for k in position] for s in range(4)])
    archs = [str_to_arch(a) for a in record["archs"]]
    out = {}
    for name, table in ((FOUR_SEED_PILOT, acc), ("v1 8px_C4_3cells_20k_6ep", v1)):
        out[name] = {"num_archs": len(archs), "seeds": 4, "split_half_tau_2v2": split_half_curve(table, [2])[0],
                     "seed_tau": split_half_curve(table, [1])[0], "noise_over_spread": noise_over_spread(table),
                     "op_count_r2": op_count_fit(archs, table.mean(0))["r2"]}
    out[FOUR_SEED_PILOT]["cpu_s_per_network"] = float(np.mean([r["cpu_s_per_network"] for r in runs.values()]))
    return out


def load_record() -> dict:
    if RECORD.exists():
        return json.loads(RECORD.read_text())
    return {"purpose": __doc__.split("\n\n")[0], "timing": {}}


def run_timing(record: dict) -> None:
    """Run the timing units not yet recorded, saving the record after each."""
    torch.set_num_threads(1)
    for name, shape in SHAPES.items():
        if name in record["timing"]:
            continue
        start = time.time()
        record["timing"][name] = timing_unit(shape)
        write_json(RECORD, record)
        print(f"{name}: {record['timing'][name]['cpu_s_per_network_epoch_10k']:.1f} CPU-s per network-epoch of 10k "
              f"images ({time.time() - start:.0f} s)", flush=True)


def print_table(record: dict) -> None:
    lscpu = record.get("lscpu_model", "")
    print(f"CPU: {lscpu}\n\nTiming (measured here, 1 thread): CPU-s per network-epoch of 10k images")
    for name, t in record["timing"].items():
        print(f"  {name:16s} {t['cpu_s_per_network_epoch_10k']:6.1f}")
    v1 = record["v1"]
    print(f"\nv1 ground truth ({len(v1['seeds'])} seeds; {v1['cpu_s_per_network_epoch_10k_epyc']:.1f} CPU-s per "
          f"network-epoch of 10k on AMD EPYC, {v1['epyc_units']} units):")
    for name, s in v1["subsets"].items():
        fit = s["op_count_fit"]
        coef = ", ".join(f"{k} {v:+.2f}" for k, v in (fit["coefficients"] or {}).items())
        curve = " ".join(f"{x:.3f}" for x in s["split_half_tau_by_seeds_per_half"])
        print(f"  {name:9s} {s['num_archs']:3d} archs: split-half tau (1..4 seeds/half) {curve}; seeds/half for 0.90 "
              f"(projected) {s['seeds_per_half_for_0.90_projected']:.1f}; noise/spread {s['noise_over_spread']:.2f}; "
              f"op-count R^2 {fit['r2']:.2f} ({coef})")
    print("\nEarlier 2-seed pilots (first 16 evaluation archs):")
    for name, p in record["old_pilots"].items():
        print(f"  {name:28s} seed tau {p['seed_tau']:.3f}, noise/spread {p['noise_over_spread']:.2f}, op-count R^2 "
              f"{p['op_count_r2']:.2f}, {p['cpu_s_per_network_epoch_10k']:.1f} CPU-s/net-epoch-10k incl. 40k-image "
              f"evaluation ({p['device']})")
    if record.get("four_seed_pilot"):
        print("\nFour seeds on the same 16 archs (split-half: 2 + 2 seeds, measured):")
        for name, p in record["four_seed_pilot"].items():
            print(f"  {name:28s} split-half tau {p['split_half_tau_2v2']:.3f}, seed tau {p['seed_tau']:.3f}, "
                  f"noise/spread {p['noise_over_spread']:.2f}, op-count R^2 {p['op_count_r2']:.2f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--table", action="store_true", help="print the table from the record; train nothing")
    args = ap.parse_args()
    record = load_record()
    if not args.table:
        run_timing(record)
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        record["lscpu_model"] = next((line.split(":", 1)[1].strip() for line in lscpu.splitlines()
                                      if line.startswith("Model name")), platform.processor())
        record["v1"], record["old_pilots"] = v1_evidence(), old_pilot_evidence()
        record["four_seed_pilot"] = four_seed_pilot_evidence()
        write_json(RECORD, record)
    print_table(record)


if __name__ == "__main__":
    main()
