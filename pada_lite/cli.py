"""Command line: ``python -m pada_lite COMMAND ...``; ``--help`` lists the commands, ``COMMAND --help`` explains one.

Each command is a ``cmd_<name>(args) -> exit code`` function and a block in :func:`build_parser`; a new command adds
both (and its error class to :data:`USER_ERRORS` when it has one). Every command checks what it needs (config, data,
ground truth) before long work.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

from .config import PRESETS, ConfigError, RunConfig, override, preset


def _config_from_args(args) -> RunConfig:
    if args.config:
        from .provenance import read_json
        config = RunConfig.from_dict(read_json(Path(args.config)))
    else:
        config = preset(args.preset)
    return override(config, args.set or [])


def _add_config_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--preset", default="lite", choices=sorted(PRESETS),
                   help="named configuration: lite (CPU, Fashion-MNIST, minutes) or paper (GPU, CIFAR-10, hours)")
    p.add_argument("--config", help="a config.json written by an earlier run (overrides --preset)")
    p.add_argument("--set", action="append", metavar="SECTION.FIELD=VALUE",
                   help="override one config field, e.g. --set train.epochs=5 --set train.path_sampler=importance "
                        "(sections: space, data, train, rank); repeatable")


def cmd_train(args) -> int:
    from .training import train_supernet
    config = _config_from_args(args)
    out = Path(args.out or f"runs/{config.name}")
    print(f"training {config.name} supernet: {config.train.epochs} epochs, path sampler {config.train.path_sampler}, "
          f"data sampler {config.train.data_sampler} -> {out}")
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:  # launched by torchrun: one process per GPU
        from .distributed import train_distributed
        result = train_distributed(config, out, resume=not args.restart)
        if int(os.environ.get("RANK", "0")) != 0:
            return 0
    else:
        result = train_supernet(config, out, resume=not args.restart)
    last = result.history[-1] if result.history else {}
    print(f"done in {result.wall_time_s:.1f} s on {result.device}: "
          f"train acc {last.get('train_acc', float('nan')):.2f} %, loss {last.get('train_loss', float('nan')):.4f}; "
          f"checkpoint and supernet in {out}")
    return 0


def arch_set(name: str, ops, count: int, seed: int) -> list[tuple]:
    """Named arch lists: benchmark (the lite benchmark's 105 archs), conv64 (the 64 conv1x1/conv3x3 archs), sample
    (random, fixed seed), all."""
    from .spaces import conv_only_archs, enumerate_archs
    if name == "benchmark":
        from .benchmark import PLANS
        archs = PLANS["v2"].archs()
        if any(op not in ops for a in archs for op in a):
            raise ConfigError(f"--archs benchmark needs a supernet with all five NB201 ops, this one has {list(ops)}: "
                              "rank --archs sample or all instead")
        return archs
    if name == "conv64":
        return conv_only_archs()
    archs = enumerate_archs(ops)
    if name == "all":
        return archs
    if name == "sample":
        rng = np.random.default_rng(seed)
        return [archs[i] for i in sorted(rng.choice(len(archs), size=min(count, len(archs)), replace=False))]
    raise ConfigError(f"unknown arch set {name!r}: use conv64, sample or all")


def cmd_rank(args) -> int:
    from .artifacts import write_rank_artifact
    from .data import load_splits
    from .evaluation import evaluate_archs
    from .experiments import ranking_images
    from .spaces import arch_to_str
    from .training import load_supernet
    model, config = load_supernet(args.run, args.device)
    archs = arch_set(args.archs, config.space.ops, args.count or config.rank.sample_archs, config.rank.sample_seed)
    truth = None
    if args.ground_truth == "lite":  # before the evaluation: a missing ground truth must not cost it
        from .benchmark import PLANS, load_lite_ground_truth
        truth = load_lite_ground_truth(PLANS["v2"].artifact()).accuracies(archs)
    elif args.ground_truth:
        from .groundtruth import GroundTruth
        truth = GroundTruth.nb201("mirror-json" if args.ground_truth == "nb201" else args.ground_truth)
        truth = truth.accuracies(archs)
    test = ranking_images(config.rank, load_splits(config.data))
    start = time.perf_counter()
    acc = evaluate_archs(model, archs, test, config.rank.batch_size, amp=args.amp, progress=True, method=args.method)
    wall = time.perf_counter() - start
    out = Path(args.out or Path(args.run) / f"rank_{args.archs}.json")
    record = write_rank_artifact(out, archs, acc, config, args.device, wall, truth, config.train.seed,
                                 method=args.method, batch_size=config.rank.batch_size)
    if "metrics" in record:
        print(" ".join(f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}" for k, v in record["metrics"].items()))
    order = np.argsort(-acc)
    print(f"ranked {len(archs)} archs in {wall:.1f} s ({len(archs) / wall:.2f} archs/s); best by the supernet:")
    for i in order[:min(5, len(order))]:
        print(f"  {acc[i]:6.2f} %  {arch_to_str(archs[i])}")
    print(f"written {out}")
    return 0


def cmd_groundtruth(args) -> int:
    from .benchmark import PLANS, compute_ground_truth
    from .reliability import ground_truth_report
    from .standalone import StandaloneConfig
    plan = PLANS[args.benchmark]
    out = Path(args.out or plan.folder())
    args.seeds = args.seeds or list(plan.seeds)
    limit = 0 if args.status else args.limit_units
    payload = compute_ground_truth(out, args.seeds, StandaloneConfig.lite(), plan.archs(), limit_units=limit,
                                   workers=args.workers, reuse=[out.parent / r for r in plan.reuse], name=plan.name)
    done = len(payload["units"])
    total = done + len(payload["missing_units"])
    print(f"{done}/{total} units done ({payload['wall_time_s_total'] / 3600:.2f} h wall, "
          f"{payload['cpu_time_s_total'] / 3600:.2f} h cpu); artifact {out.with_suffix('.json')}")
    if payload["missing_units"]:
        print(f"missing: {' '.join(payload['missing_units'])} -- run `python -m pada_lite groundtruth "
              f"--benchmark {plan.name} --seeds {' '.join(map(str, args.seeds))}` to continue")
    for score, label in (("eval_acc", "test + held-out images (the ground truth)"), ("test_acc", "test set alone")):
        report = ground_truth_report(payload, score)
        print(f"accuracy on the {label}:")
        for subset in ("all", "conv_only", "sampled"):
            r = report[subset]
            if "seed_tau" in r:
                halves = (f", two {r['half_seeds']}-seed means {r['half_tau']:.3f}" if "half_tau" in r else "")
                print(f"  {subset:9s} {r['num_archs']:3d} archs: seed-to-seed tau {r['seed_tau']:.3f}{halves}, mean "
                      f"acc {r['mean_acc_min']:.2f}..{r['mean_acc_max']:.2f} %, seed std {r['seed_std']:.2f} %")
    return 0


def cmd_experiment(args) -> int:
    from .experiments import RESULTS_DIR, reproduce, run_experiment
    start = time.perf_counter()
    if args.command == "experiment" and args.name == "sharing":
        from .sharing import print_summary, run_sharing
        print_summary(run_sharing(force=args.force, workers=args.workers))
        print(f"done in {time.perf_counter() - start:.0f} s")
        return 0
    if args.command == "experiment" and args.name == "mobilenet_lite":
        from .mobilenet_search import LITE_ARTIFACT, lite_experiment
        if args.force:
            raise ConfigError(f"mobilenet_lite recomputes the units whose config changed; to recompute all, delete "
                              f"{LITE_ARTIFACT}")
        payload = lite_experiment()
        print(f"mobilenet_lite: {len(payload['units'])} units -> {LITE_ARTIFACT} ({time.perf_counter() - start:.0f} s)")
        return 0
    if args.command == "reproduce":
        summaries = reproduce(force=args.force, workers=args.workers)
    else:
        summary = run_experiment(args.name, force=args.force, workers=args.workers, labels=args.only)
        if summary is None:
            print(f"{args.name}: the runs of {args.only} are done; other runs are missing, so no summary yet (see "
                  "`python -m pada_lite report`)")
            return 0
        summaries = {args.name: summary}
    for name, summary in summaries.items():
        print(f"{name}: {len(summary['units'])} runs -> {RESULTS_DIR / name}.json")
        for row in summary["rows"]:
            tau = row.get("all", {}).get("kendall_tau")
            print(f"  {row['label']:18s}" + (f" Kendall tau {tau['mean']:.3f} ± {tau['std']:.3f}" if tau else "") +
                  f"  GV {row['grad_var_final']['mean']:.3g}")
    print(f"done in {time.perf_counter() - start:.0f} s")
    return 0


def cmd_report(args) -> int:
    from .report import README, results_markdown, update_readme
    if args.json:
        import json

        from .yardsticks import main_yardsticks
        print(json.dumps(main_yardsticks("v2-main", partial=True), indent=2))
    elif args.update_readme:
        update_readme()
        print(f"updated the results block of {README}")
    else:
        print(results_markdown())
    return 0


def cmd_search_darts(args) -> int:
    """search --space darts: train a supernet, search it, write the genotype with provenance."""
    from .cellsearch import override_preset, preset, run_lite_comparison, search
    p = override_preset(preset(args.preset), args.set or [])
    if args.comparison:
        summary = run_lite_comparison(p=p, limit_units=args.limit_units, workers=args.workers)
        for row in summary["rows"]:
            acc = row["test_acc"]
            print(f"  {row['label']:9s} {acc['mean']:6.2f} ± {acc['ci95']:.2f} % over {acc['n']} seeds, "
                  f"{row['params']:,} parameters")
        print(f"{len(summary['missing_units'])} units missing; {summary['cpu_time_s_total'] / 60:.1f} CPU-min so far; "
              "artifact data/results/darts_lite.json")
        return 0
    out = Path(args.out or f"runs/darts-{p.name}-{args.sampler}")
    print(f"searching the DARTS space ({p.name}, {args.sampler}): supernet {p.search.train.epochs} epochs, "
          f"evolution over {p.evolution.budget} candidates -> {out}")
    record = search(p, args.sampler, out, seed=args.seed)
    if record:
        print(f"done in {record['wall_time_s']:.0f} s: supernet accuracy {record['supernet_accuracy']:.2f} %, "
              f"{record['params']:,} parameters\n{record['genotype']}\nwritten {out / 'genotype.json'}")
    return 0


def cmd_retrain_darts(args) -> int:
    """retrain --space darts: train a genotype's network stand-alone and report its test accuracy."""
    from .cellsearch import load_genotype, override_preset, preset, retrain_genotype
    from .provenance import write_json
    p = override_preset(preset(args.preset), args.set or [])
    genotype = load_genotype(args.genotype)
    name = Path(args.genotype).stem if args.genotype.endswith(".json") else args.genotype[:40]
    out = Path(args.out or f"runs/darts-{p.name}-retrain-{name}-s{args.seed}")
    print(f"retraining {args.genotype} ({p.name}): {p.retrain.epochs} epochs, {p.network.cells} cells, "
          f"C={p.network.channels} -> {out}")
    _, record = retrain_genotype(p, genotype, out, seed=args.seed)
    write_json(out / "result.json", record)
    print(f"done in {record['wall_time_s']:.0f} s: test accuracy {record['test_acc']:.2f} %, "
          f"{record['params']:,} parameters, {record['macs'] / 1e6:.1f} M multiply-adds; written {out / 'result.json'}")
    return 0


def cmd_search_mobilenet(args) -> int:
    """search --space mobilenet: train a supernet, search it under a FLOPs limit, write the arch."""
    from .config import override_parts
    from .mobilenet_search import preset as mobilenet_preset
    from .mobilenet_search import run_search
    parts = override_parts(dict(zip(("search", "evolution"), mobilenet_preset(args.preset))), args.set or [])
    run, search = parts["search"], parts["evolution"]
    if args.flops_limit is not None:
        search.flops_limit = args.flops_limit
    if (args.preset == "full") != bool(args.data):
        raise ConfigError("the full preset reads ImageNet: pass --data <root holding train/>" if args.data is None
                          else "--data applies to --preset full (the lite preset reads Fashion-MNIST)")
    if args.data:
        run.data.root = str(Path(args.data).expanduser().resolve())
    out = Path(args.out or f"runs/mobilenet-{args.preset}-{search.flops_limit:g}M")
    print(f"mobilenet {args.preset}: supernet {run.train.epochs} epochs, then evolution ({search.budget} candidates) "
          f"and random search under {search.flops_limit:g} M FLOPs -> {out}")
    record = run_search(run, search, out, resume=not args.restart, workers=args.workers)
    if record is None:  # a torchrun rank other than 0: rank 0 searches and writes
        return 0
    print(f"best {record['arch']}: {record['mflops']:.2f} M FLOPs, fitness {record['fitness']:.2f} %; random search: "
          f"{record['random']['best_mflops']:.2f} M, {record['random']['best_fitness']:.2f} %; "
          f"written {out / 'search.json'}")
    return 0


def cmd_retrain_mobilenet(args) -> int:
    """retrain --space mobilenet: train an arch stand-alone (lite: Fashion-MNIST; full: ImageNet folder)."""
    import dataclasses

    from .mobilenet_search import (
        FULL_RETRAIN_DROPOUT,
        imagenet_sources,
        lite_retrain_data,
        retrain_arch,
        retrain_preset,
    )
    from .mobilenet_search import preset as mobilenet_preset
    from .provenance import read_json
    run, _ = mobilenet_preset(args.preset)
    if not (args.arch or args.search):
        raise ConfigError("name the arch: --arch k3_e6-skip-... or --search <run>/search.json")
    arch = args.arch or read_json(Path(args.search))["arch"]
    from .config import override_parts
    config = override_parts({"retrain": dataclasses.replace(retrain_preset(args.preset), seed=args.seed)},
                            args.set or [])["retrain"]
    if args.preset == "full" and not args.data:
        raise ConfigError("the full preset reads ImageNet: pass --data <root holding train/ and val/>")
    env = _join_torchrun()  # None in a single process
    try:
        if args.preset == "full":
            from .training import resolve_device
            train, test = imagenet_sources(args.data, run.space.input_size, config.batch_size, args.seed,
                                           args.workers, resolve_device(config.device), rank=env.rank if env else 0,
                                           world_size=env.world_size if env else 1)
            space = dataclasses.replace(run.space, dropout=FULL_RETRAIN_DROPOUT)
        else:
            from .data import load_splits
            data = load_splits(lite_retrain_data())
            train, test, space = data.train, data.test, run.space
        out = Path(args.out or f"runs/mobilenet-{args.preset}-retrain-s{args.seed}")
        result = retrain_arch(tuple(arch.split("-")), space, config, train, test, out, args.seed,
                              resume=not args.restart)
    finally:
        if env is not None:
            import torch.distributed as dist
            dist.destroy_process_group()
    if env is not None and env.rank != 0:
        return 0
    print(f"{arch}: test accuracy {result.test_acc:.2f} % after {config.epochs} epochs ({result.wall_time_s:.0f} s on "
          f"{result.device}); written {out}")
    return 0


def _join_torchrun():
    """This process's place in a torchrun job (joining its process group), or None when run alone."""
    if int(os.environ.get("WORLD_SIZE", "1")) == 1:
        return None
    from .distributed import init_distributed
    return init_distributed()


# options of `search` / `retrain` that only one space reads: (option, its default, the space)
SPACE_OPTIONS = {"search": {"sampler": ("pada", "darts"), "comparison": (False, "darts"),
                            "limit_units": (None, "darts"), "seed": (0, "darts"), "data": (None, "mobilenet"),
                            "flops_limit": (None, "mobilenet"), "restart": (False, "mobilenet")},
                 "retrain": {"genotype": (None, "darts"), "arch": (None, "mobilenet"),
                             "search": (None, "mobilenet"), "data": (None, "mobilenet"),
                             "workers": (None, "mobilenet"), "restart": (False, "mobilenet")}}
SPACE_PRESETS = {"darts": ("lite", "paper"), "mobilenet": ("lite", "full")}


def check_space_options(args) -> None:
    """One-line errors for options the chosen space does not read, and for a preset it does not have."""
    for option, (default, space) in SPACE_OPTIONS[args.command].items():
        if space != args.space and getattr(args, option) != default:
            raise ConfigError(f"--{option.replace('_', '-')} applies to --space {space}, not --space {args.space}")
    presets = SPACE_PRESETS[args.space]
    if args.preset not in presets:
        raise ConfigError(f"--preset {args.preset} does not exist for {args.command} --space {args.space}: "
                          f"choose {' or '.join(presets)}")


def cmd_search(args) -> int:
    """search --space darts|mobilenet."""
    check_space_options(args)
    if args.workers is None:
        args.workers = 1 if args.space == "darts" else 8
    return (cmd_search_darts if args.space == "darts" else cmd_search_mobilenet)(args)


def cmd_retrain(args) -> int:
    """retrain --space darts|mobilenet."""
    check_space_options(args)
    if args.space == "darts" and not args.genotype:
        raise ConfigError("name the genotype: --genotype DARTS_V2, a genotype.json, or a Genotype(...) string")
    if args.workers is None:
        args.workers = 8
    return (cmd_retrain_darts if args.space == "darts" else cmd_retrain_mobilenet)(args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m pada_lite",
        description="Train weight-sharing NAS-Bench-201 supernets (SPOS, FairNAS, PA&DA) and rank sub-networks "
                    "with inherited weights. Start with: python -m pada_lite train  (lite preset, CPU, minutes), "
                    "then: python -m pada_lite rank --run runs/lite")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    p = sub.add_parser("train", help="train a supernet (checkpoints every epoch; re-running resumes)",
                       description="Train a supernet; re-running the same command resumes from its checkpoint.")
    _add_config_args(p)
    p.add_argument("--out", help="run folder for checkpoint, config and results (default runs/<preset>)")
    p.add_argument("--restart", action="store_true", help="ignore an existing checkpoint and start over")
    p.set_defaults(func=cmd_train)
    p = sub.add_parser("rank", help="evaluate sub-networks with inherited weights and compute ranking metrics",
                       description="Evaluate architectures with the weights of a trained supernet (a run folder).")
    p.add_argument("--run", required=True, help="run folder written by `train` (holds supernet.pt)")
    p.add_argument("--archs", default="benchmark", choices=["benchmark", "conv64", "sample", "all"],
                   help="which archs: the lite benchmark's 105 (default), the 64 conv1x1/conv3x3 archs, a random "
                        "sample, or the whole space")
    p.add_argument("--count", type=int, help="size of the random sample (default: config rank.sample_archs)")
    p.add_argument("--ground-truth", help="ground truth to compare with: 'lite' (the lite benchmark's, for --archs "
                   "benchmark), 'nb201' (NB201 CIFAR-10 test accuracies, downloaded and sha256-checked) or the path "
                   "of an official NB201 .pth file")
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument("--method", default="auto", choices=["auto", "fast", "simple"],
                   help="auto: the exact batched evaluator when the model supports it; simple: one arch at a time")
    p.add_argument("--amp", action="store_true", help="bfloat16 autocast on CUDA (accuracies equal up to rounding)")
    p.add_argument("--out", help="output JSON (default <run>/rank_<archs>.json)")
    p.set_defaults(func=cmd_rank)
    from .benchmark import PLANS
    p = sub.add_parser("groundtruth", help="train the lite benchmark's evaluation archs stand-alone (resumable)",
                       description="Compute the lite benchmark's ground truth: every evaluation arch trained "
                                   "stand-alone per seed. Each finished unit is saved in <out>/units/; re-running "
                                   "continues where it stopped; <out>.json is the merged artifact.")
    p.add_argument("--benchmark", choices=sorted(PLANS), default="v2",
                   help="which ground truth: v2 (the lite benchmark: 105 sampled archs, 26 seeds, v1's seeds "
                        "reused), v2-motivation (13 archs of none + conv3x3, 24 seeds) or lite (version 1, retired: "
                        "169 archs, 9 seeds); default v2")
    p.add_argument("--seeds", type=int, nargs="+",
                   help="training seeds (default: the benchmark's; the ground truth is the mean over the seeds that "
                        "every arch has, so it stays usable while more are added)")
    p.add_argument("--limit-units", type=int, help="train at most this many missing units, then stop")
    p.add_argument("--status", action="store_true", help="train nothing: rebuild the artifact, report progress")
    p.add_argument("--workers", type=int, default=2, help="parallel worker processes, 1 thread each (default 2)")
    p.add_argument("--out", help="units folder (default <data home>/groundtruth/<benchmark>; artifact <out>.json)")
    p.set_defaults(func=cmd_groundtruth)
    from .experiments import EXPERIMENTS
    p = sub.add_parser("experiment", help="run one named lite experiment; its artifact goes to <data home>/results/",
                       description="Run a named experiment. Finished runs are kept and skipped; a run is recomputed "
                                   "when its config changed or with --force.")
    p.add_argument("name", choices=sorted([*EXPERIMENTS, "sharing", "mobilenet_lite"]), help="which experiment")
    p.add_argument("--force", action="store_true", help="recompute every run even if its result exists")
    p.add_argument("--workers", type=int, default=1, help="parallel single-threaded worker processes (2 on 2 cores)")
    p.add_argument("--only", nargs="+", metavar="LABEL", help="run only these settings' runs (e.g. SPOS 'PA&DA'); "
                                                                 "the summary is written once every run is done")
    p.set_defaults(func=cmd_experiment)
    p = sub.add_parser("reproduce", help="recompute every lite experiment artifact (progress bar with ETA)",
                       description="Recompute v2-main, v2-ablations and v2-motivation (needs their ground truths: "
                                   "python -m pada_lite groundtruth --benchmark v2, then --benchmark v2-motivation).")
    p.add_argument("--force", action="store_true", help="recompute runs whose results already exist")
    p.add_argument("--workers", type=int, default=2, help="parallel single-threaded worker processes (default 2)")
    p.set_defaults(func=cmd_experiment)
    p = sub.add_parser("report", help="print the lite benchmark's result tables (ground truth, main experiment)",
                       description="Markdown tables made from the ground truth and experiment artifacts.")
    p.add_argument("--update-readme", action="store_true", help="rewrite the results block of README.md")
    p.add_argument("--json", action="store_true", help="print the main experiment's yardsticks as one JSON object "
                   "(ground-truth reliability, tau with 95 %% CIs, within-group tau, paired differences, baselines), "
                   "from the runs finished so far (main.missing_units counts the others)")
    p.set_defaults(func=cmd_report)
    p = sub.add_parser("search", help="search the DARTS or MobileNet space with a supernet (resumable)",
                       description="Train (or resume) a single-path supernet, run SPOS's evolution and a random "
                                   "search under the space's limit (darts: parameters; mobilenet: FLOPs), and write "
                                   "the result with provenance: <out>/genotype.json (darts) or <out>/search.json "
                                   "(mobilenet).")
    p.add_argument("--space", required=True, choices=["darts", "mobilenet"], help="search space")
    p.add_argument("--preset", default="lite", choices=["lite", "paper", "full"],
                   help="lite (CPU, Fashion-MNIST 28x28, minutes); darts: paper (GPU, CIFAR-10, DARTS settings); "
                        "mobilenet: full (GPU, ImageNet folder, SPOS settings; torchrun for several GPUs)")
    p.add_argument("--out", help="run folder (default runs/<space>-<preset>-...)")
    p.add_argument("--sampler", default="pada", choices=["spos", "pada"], help="darts: supernet path and data samplers")
    p.add_argument("--seed", type=int, default=0, help="darts: supernet training seed")
    p.add_argument("--set", action="append", metavar="SECTION.FIELD=VALUE",
                   help="override a preset field, e.g. --set search.train.epochs=2 --set evolution.population=20 "
                        "(darts parts: search, evolution, network, retrain_data, retrain; mobilenet: search (the "
                        "supernet run), evolution); repeatable")
    p.add_argument("--comparison", action="store_true",
                   help="darts: run the lite comparison instead (SPOS and PA&DA searches, DARTS V2, 5 random "
                        "genotypes, 3 retraining seeds each; resumable) -> data/results/darts_lite.json")
    p.add_argument("--limit-units", type=int, help="darts, with --comparison: run at most this many missing units")
    p.add_argument("--workers", type=int, help="darts, with --comparison: parallel single-threaded processes (1); "
                                              "mobilenet, full preset: data loader worker processes (8)")
    p.add_argument("--data", help="mobilenet, full preset: ImageNet root holding train/ (50,000 images of it are "
                                  "held out for the search)")
    p.add_argument("--flops-limit", type=float, help="mobilenet: largest FLOPs (M multiply-accumulates) of an arch")
    p.add_argument("--restart", action="store_true", help="mobilenet: ignore an existing supernet checkpoint")
    p.set_defaults(func=cmd_search)
    p = sub.add_parser("retrain", help="train a searched genotype or arch stand-alone (checkpoints; resumes)",
                       description="Train one network of the DARTS or MobileNet space from scratch with the preset's "
                                   "protocol and report its test accuracy, parameters and multiply-adds.")
    p.add_argument("--space", required=True, choices=["darts", "mobilenet"], help="search space")
    p.add_argument("--preset", default="lite", choices=["lite", "paper", "full"],
                   help="lite (CPU, Fashion-MNIST); darts: paper (GPU, CIFAR-10, the DARTS protocol); "
                        "mobilenet: full (ImageNet folder, the ProxylessNAS schedule)")
    p.add_argument("--seed", type=int, default=0, help="weights and training seed")
    p.add_argument("--out", help="run folder (default runs/<space>-<preset>-retrain-...)")
    p.add_argument("--genotype", help="darts: a genotype.json written by `search`, a name (DARTS_V2) or a "
                                      "Genotype(...) string")
    p.add_argument("--set", action="append", metavar="SECTION.FIELD=VALUE",
                   help="override a preset field, e.g. --set retrain.epochs=2 (darts parts: network, retrain, ...; "
                        "mobilenet: retrain); repeatable")
    p.add_argument("--arch", help="mobilenet: the arch, e.g. k3_e6-skip-k5_e3-... (one choice per block)")
    p.add_argument("--search", help="mobilenet: a search.json written by `search` (its best arch)")
    p.add_argument("--data", help="mobilenet, full preset: ImageNet root holding train/ and val/")
    p.add_argument("--workers", type=int, help="mobilenet, full preset: data loader worker processes (8)")
    p.add_argument("--restart", action="store_true", help="mobilenet: ignore an existing checkpoint")
    p.set_defaults(func=cmd_retrain)
    return parser


def user_errors() -> tuple[type[BaseException], ...]:
    """Errors in the user's input or environment: printed as one line, never as a traceback."""
    from .benchmark import GroundTruthError
    from .data import DataError
    from .experiments import ExperimentError
    from .remote import DataFileError
    from .runner import JobError
    from .training import TrainingError
    return (ConfigError, DataError, DataFileError, TrainingError, ExperimentError, GroundTruthError, JobError,
            FileNotFoundError, ValueError)


def main(argv: list[str] | None = None) -> int:
    """Entry point; errors in the user's input print one line and exit 2."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return args.func(args)
    except user_errors() as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: re-run the same command to resume from the last checkpoint", file=sys.stderr)
        return 130
