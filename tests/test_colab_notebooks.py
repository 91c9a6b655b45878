"""The committed Colab notebooks are the chapters' MyST sources plus an install cell, and up to date."""
import importlib.util
import json
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("colab_notebooks", REPO / "tools" / "colab_notebooks.py")
colab = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(colab)


def test_every_chapter_has_an_up_to_date_notebook():
    assert colab.chapter_sources(), "no MyST chapters found under book/"
    stale = [str(md.relative_to(REPO)) for md in colab.stale_notebooks()]
    assert not stale, f"notebooks out of date with their sources: {stale}; run python tools/colab_notebooks.py"


def test_notebook_starts_with_the_install_cell_and_keeps_the_chapter_cells(tmp_path):
    md = tmp_path / "chapter.md"
    header = (REPO / "book" / "variance.md").read_text().split("\n---", 1)[0] + "\n---\n"  # a real chapter's
    md.write_text(header + "\n# Title\n\n```{code-cell} ipython3\nx = 1\n```\n")
    nb = json.loads(colab.colab_notebook_text(md))
    first, *rest = nb["cells"]
    assert "%pip install" in "".join(first["source"]) and first["metadata"]["tags"] == ["colab-install"]
    assert [c["cell_type"] for c in rest] == ["markdown", "code"] and "".join(rest[1]["source"]) == "x = 1"
    assert all(c.get("outputs", []) == [] for c in nb["cells"])
    assert colab.colab_notebook_text(md) == colab.colab_notebook_text(md)  # deterministic: committed files are stable


def test_check_mode_reports_a_stale_notebook(tmp_path, monkeypatch, capsys):
    book = tmp_path / "book"
    book.mkdir()
    (book / "c.md").write_text("---\njupytext:\n  text_representation:\n    format_name: myst\n---\n\n# C\n")
    monkeypatch.setattr(colab, "BOOK", book)
    monkeypatch.setattr(colab, "REPO", tmp_path)
    assert colab.main(["--check"]) == 1 and "c.ipynb is out of date" in capsys.readouterr().out
    assert colab.main([]) == 0 and colab.main(["--check"]) == 0


def test_config_and_install_cell_follow_project_py(monkeypatch):
    """One address: _config.yml (launch buttons) and the install cell are derived from pada_lite/project.py."""
    import types

    import yaml

    from pada_lite import project

    config = yaml.safe_load((REPO / "_config.yml").read_text())["repository"]
    assert (config["url"], config["branch"]) == (project.repository_url(), project.BRANCH)
    moved = types.SimpleNamespace(repository_url=lambda: "https://github.com/someone/elsewhere", BRANCH="stable")
    monkeypatch.setattr(colab, "project", lambda: moved)
    rewritten = yaml.safe_load(colab.config_text((REPO / "_config.yml").read_text()))
    assert rewritten["repository"]["url"] == "https://github.com/someone/elsewhere"
    assert rewritten["repository"]["branch"] == "stable"
    assert rewritten["launch_buttons"] == yaml.safe_load((REPO / "_config.yml").read_text())["launch_buttons"]
    assert 'git+https://github.com/someone/elsewhere@stable"' in colab.install_cell_source()


def test_check_mode_reports_a_config_that_disagrees_with_project_py(tmp_path, monkeypatch, capsys):
    config = tmp_path / "_config.yml"
    config.write_text("repository:\n  url: https://github.com/old/place\n  branch: main\n")
    monkeypatch.setattr(colab, "CONFIG", config)
    monkeypatch.setattr(colab, "BOOK", tmp_path)  # no chapters here
    monkeypatch.setattr(colab, "REPO", tmp_path)
    assert colab.main(["--check"]) == 1 and "differ from pada_lite/project.py" in capsys.readouterr().out
    assert colab.main([]) == 0 and colab.main(["--check"]) == 0
    from pada_lite import project
    assert f"url: {project.repository_url()}\n" in config.read_text()
