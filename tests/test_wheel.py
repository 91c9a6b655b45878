"""The Colab path: a wheel installed outside the checkout runs a chapter that loads artifacts (PADA_LITE_HOME unset).

The fresh virtual environment sees this environment's packages (torch, ipykernel, ...) through a .pth file, so
only the wheel is installed (``--no-deps``): minutes and gigabytes saved, the same isolation for pada_lite itself.
Measured: about 40 s on the project's 2-core CPU (wheel 6 s, the chapter's kernel the rest).
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from tests.conftest import REPO

CHAPTER = "pada"  # loads the v2 main and ablation runs and the v2 ground truth; trains nothing
EXECUTE = """
import sys
import nbformat
from nbclient import NotebookClient
notebook = nbformat.read(sys.argv[1], as_version=4)
NotebookClient(notebook, timeout=600, kernel_name="python3").execute()
import pada_lite
print("pada_lite from", pada_lite.__file__)
"""


def copy_sources(target: Path) -> None:
    """The committed files of the checkout plus the artifacts under data/ (what a git clone holds)."""
    files = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True).stdout.split()
    for name in files + [str(p.relative_to(REPO)) for p in (REPO / "data").rglob("*.json")]:
        source = REPO / name
        if source.is_file() and "partial" not in source.parts and "cache" not in source.parts:
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)


@pytest.mark.slow
def test_wheel_outside_the_checkout_runs_an_artifact_chapter(tmp_path):
    copy_sources(tmp_path / "src")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                    str(tmp_path / "dist"), str(tmp_path / "src")], check=True, capture_output=True)
    wheel = next((tmp_path / "dist").glob("pada_lite-*.whl"))
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    Path(site, "outer_environment.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "-q", str(wheel)],
                   check=True, capture_output=True)
    work = tmp_path / "elsewhere"
    work.mkdir()
    notebook = shutil.copy(REPO / "book" / f"{CHAPTER}.ipynb", work)
    env = {k: v for k, v in os.environ.items() if k not in ("PADA_LITE_HOME", "PYTHONPATH")}
    env.update(XDG_CACHE_HOME=str(tmp_path / "cache"), OMP_NUM_THREADS="1")
    out = subprocess.run([str(python), "-c", EXECUTE, str(notebook)], cwd=work, env=env, capture_output=True,
                         text=True, timeout=900)
    assert out.returncode == 0, out.stderr[-3000:]
    installed = out.stdout.split("pada_lite from", 1)[1].strip()
    assert installed.startswith(site) and not installed.startswith(str(REPO))
