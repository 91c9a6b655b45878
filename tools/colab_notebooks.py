"""book/<chapter>.md (MyST notebook) -> book/<chapter>.ipynb for Colab, first cell installing pada_lite when missing;
and the repository address of ``_config.yml`` (launch buttons) from ``pada_lite/project.py``.

The notebooks are committed (Colab opens them from GitHub; the launch buttons point at them) and carry no outputs.
The repository address is written once, in ``pada_lite/project.py``; the install cell and ``_config.yml``'s
``repository:`` section (``url``, ``branch``) are derived from it here.
``python tools/colab_notebooks.py`` rewrites both; ``--check`` only reports what is out of date with the sources
(a test runs it, so a changed chapter or address that was not propagated fails CI).
"""
from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

import jupytext
import nbformat

REPO = Path(__file__).resolve().parent.parent
BOOK = REPO / "book"
CONFIG = REPO / "_config.yml"  # its repository: section (url, branch) draws the launch buttons
PROJECT = REPO / "pada_lite" / "project.py"  # the one place the repository address is written


def project():
    """``pada_lite/project.py``, loaded alone (importing the package would import torch)."""
    spec = importlib.util.spec_from_file_location("pada_lite_project", PROJECT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def config_text(text: str) -> str:
    """``_config.yml``'s text with the repository ``url`` and ``branch`` lines set from project.py."""
    proj = project()
    for key, value in (("url", proj.repository_url()), ("branch", proj.BRANCH)):
        text, count = re.subn(rf"(?m)^(repository:\n(?:[ ]+.*\n|\s*#.*\n)*?[ ]+{key}:[ ]*)\S+", rf"\g<1>{value}", text)
        if count != 1:
            raise SystemExit(f"{CONFIG.name}: no '{key}:' line under 'repository:' to set from pada_lite/project.py")
    return text


def install_cell_source() -> str:
    """The first cell: install pada_lite from the book's repository when it is missing (Colab keeps its torch)."""
    proj = project()
    url, branch = proj.repository_url(), proj.BRANCH
    return ("# Colab or a fresh environment: install the pada_lite library if it is missing "
            "(the book's build has it).\n"
            "try:\n"
            "    import pada_lite\n"
            "except ImportError:\n"
            f'    %pip install --quiet "pada-lite @ git+{url}@{branch}"\n'
            "    import importlib\n"
            "    importlib.invalidate_caches()\n"
            "    import pada_lite\n")


def chapter_sources() -> list[Path]:
    """The executable chapters: MyST-notebook .md files under book/ (plain Markdown pages have nothing to run)."""
    return [md for md in sorted(BOOK.rglob("*.md")) if "_static" not in md.parts
            and "format_name: myst" in md.read_text(encoding="utf-8").split("\n---", 1)[0]]


def colab_notebook_text(md: Path) -> str:
    """The .ipynb text of chapter ``md``: its cells without outputs, after the install cell."""
    nb = jupytext.read(md)
    cell = nbformat.v4.new_code_cell(install_cell_source())
    cell.metadata["tags"] = ["colab-install"]
    nb.cells.insert(0, cell)
    for i, c in enumerate(nb.cells):
        c["id"] = f"cell-{i:03d}"  # deterministic ids: the committed file changes only when its source does
    nb.metadata.pop("jupytext", None)
    nbformat.validate(nb)
    return jupytext.writes(nb, fmt="ipynb")


def stale_notebooks() -> list[Path]:
    """Chapters whose committed notebook is missing or differs from what their source gives."""
    return [md for md in chapter_sources()
            if not md.with_suffix(".ipynb").exists()
            or md.with_suffix(".ipynb").read_text(encoding="utf-8") != colab_notebook_text(md)]


def main(argv: list[str]) -> int:
    config = CONFIG.read_text(encoding="utf-8")
    if "--check" in argv:
        stale = stale_notebooks()
        for md in stale:
            print(f"{md.with_suffix('.ipynb').relative_to(REPO)} is out of date: run python tools/colab_notebooks.py")
        if config_text(config) != config:
            print(f"{CONFIG.name}'s repository url/branch differ from pada_lite/project.py: "
                  "run python tools/colab_notebooks.py")
        return 1 if stale or config_text(config) != config else 0
    if config_text(config) != config:
        CONFIG.write_text(config_text(config), encoding="utf-8")
        print(f"   {CONFIG.name}: repository set from pada_lite/project.py")
    for md in chapter_sources():
        md.with_suffix(".ipynb").write_text(colab_notebook_text(md), encoding="utf-8")
    print(f"   {len(chapter_sources())} Colab notebooks written under {BOOK.relative_to(REPO)}/")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
