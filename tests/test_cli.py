import json
import subprocess
import sys

import pytest

from pada_lite.cli import arch_set, main
from tests.conftest import REPO, TINY


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "pada_lite", *args], capture_output=True, text=True, cwd=REPO,
                          timeout=300)


def test_help_explains_commands():
    out = run_cli("--help")
    assert out.returncode == 0 and "train" in out.stdout and "rank" in out.stdout
    assert "--set" in run_cli("train", "--help").stdout


@pytest.mark.parametrize("args, message", [
    (["train", "--set", "train.tau=3"], "outside [0, 1]"),
    (["train", "--set", "train.epochs"], "section.field=value"),
    (["rank", "--run", "/nonexistent"], "train first"),
])
def test_bad_arguments_give_one_line_errors(args, message):
    out = run_cli(*args)
    assert out.returncode == 2
    assert message in out.stderr and "Traceback" not in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1


def test_train_then_rank_end_to_end(tmp_path):
    sets = [a for item in TINY + ["train.epochs=1"] for a in ("--set", item)]
    assert main(["train", "--out", str(tmp_path), *sets]) == 0
    assert main(["rank", "--run", str(tmp_path), "--archs", "sample", "--count", "5",
                 "--out", str(tmp_path / "r.json")]) == 0
    payload = json.loads((tmp_path / "r.json").read_text())
    assert len(payload["archs"]) == 5 == len(payload["supernet_acc"])
    assert all(0 <= a <= 100 for a in payload["supernet_acc"]) and payload["config"]["name"] == "lite"


def test_arch_sets():
    from pada_lite.spaces import NB201_OPS
    assert len(arch_set("conv64", NB201_OPS, 0, 0)) == 64
    sample = arch_set("sample", NB201_OPS, 200, 0)
    assert len(set(sample)) == 200 and sample == arch_set("sample", NB201_OPS, 200, 0)
