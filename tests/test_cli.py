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
    assert main(["rank", "--run", str(tmp_path), "--ground-truth", "lite", "--out", str(tmp_path / "b.json")]) == 0
    bench = json.loads((tmp_path / "b.json").read_text())  # the lite benchmark's archs, scored against its truth
    assert len(bench["archs"]) == 105 and -1 <= bench["metrics"]["kendall_tau"] <= 1


def test_arch_sets():
    from pada_lite.config import ConfigError
    from pada_lite.spaces import NB201_OPS
    assert len(arch_set("conv64", NB201_OPS, 0, 0)) == 64 and len(arch_set("benchmark", NB201_OPS, 0, 0)) == 105
    with pytest.raises(ConfigError, match="all five NB201 ops"):
        arch_set("benchmark", ("none", "nor_conv_3x3"), 0, 0)
    sample = arch_set("sample", NB201_OPS, 200, 0)
    assert len(set(sample)) == 200 and sample == arch_set("sample", NB201_OPS, 200, 0)


@pytest.mark.parametrize("item, expected", [
    ("train.epochs=2.5", "train.epochs='2.5' is not an integer"),
    ("train.epochs=true", "train.epochs='true' is not an integer"),
    ("train.lr=abc", "train.lr='abc' is not a number"), ("train.epochs=five", "train.epochs='five' is not an integer"),
    ("data.train_size=lots", "data.train_size='lots' is not an integer or none"),
    ("train.amp=maybe", "train.amp='maybe' is not true or false")])
def test_bad_set_values_name_the_field_the_value_and_the_type(item, expected, capsys, monkeypatch):
    from pada_lite import training
    monkeypatch.setattr(training, "train_supernet", lambda *a, **k: pytest.fail("training started"))
    assert main(["train", "--set", item]) == 2
    err = capsys.readouterr().err
    assert expected in err and "expects" in err and len(err.strip().splitlines()) == 1


def test_rank_against_nb201_fails_before_evaluating_when_the_ground_truth_is_unreachable(tmp_path, monkeypatch,
                                                                                          capsys):
    import urllib.request

    from pada_lite import evaluation
    from pada_lite.config import lite, override
    from pada_lite.provenance import torch_save
    from pada_lite.spaces import build_supernet
    config = override(lite(), TINY)
    model = build_supernet(config.space)
    torch_save(tmp_path / "supernet.pt", {"config": config.to_dict(), "model": model.state_dict()})
    monkeypatch.setenv("PADA_LITE_CACHE", str(tmp_path / "cache"))   # empty cache
    monkeypatch.setenv("PADA_LITE_MIRROR", str(tmp_path / "mirror"))  # empty mirror
    monkeypatch.setattr(urllib.request, "urlopen", lambda *a, **k: (_ for _ in ()).throw(OSError("offline")))
    monkeypatch.setattr(evaluation, "evaluate_archs", lambda *a, **k: pytest.fail("evaluated before fetching"))
    assert main(["rank", "--run", str(tmp_path), "--ground-truth", "nb201"]) == 2
    err = capsys.readouterr().err
    assert "cannot get nb201_cifar10_test" in err and len(err.strip().splitlines()) == 1
