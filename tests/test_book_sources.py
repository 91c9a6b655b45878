"""The book's sources keep their promises: run-time headers agree with the code, the page list is complete, and no
placeholder (``epochs=N``, TODO) is left for a reader to trip over."""
import re
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
MAX_IDLE_S = 60   # every page runs within a minute on an idle 2-core CPU (longer work goes to artifacts/CLI)
HEADER = re.compile(r"\*\*Run time:\*\* about (\d+) s on an idle 2-core CPU")
CODE = re.compile(r"glue_run_time\(chapter_start, expected_s=(\d+)\)")
# e.g. --set train.epochs=N
PLACEHOLDERS = (re.compile(r"\b(?:train|data|space|rank)\.\w+=(?:[A-Z]|<[^>]*>|\.\.\.)(?![\w.])"),
                re.compile(r"\b(?:TODO|FIXME|TBD|XXX)\b"))
SOURCES = [*sorted((REPO / "book").glob("*.md")), REPO / "README.md", REPO / "_config.yml", REPO / "environment.yml",
           *sorted((REPO / "tools").glob("*")), *sorted((REPO / "benchmarks").glob("*"))]


def is_notebook(path: Path) -> bool:
    return "format_name: myst" in path.read_text(encoding="utf-8").split("\n---", 1)[0]


def toc_files() -> list[str]:
    toc = yaml.safe_load((REPO / "_toc.yml").read_text())
    files = [toc["root"]]
    for part in toc.get("parts", []):
        files += [chapter["file"] for chapter in part.get("chapters", [])]
    return [Path(f).stem for f in files]


PAGES = [p for p in sorted((REPO / "book").glob("*.md")) if is_notebook(p)]


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.stem)
def test_header_states_the_idle_time_the_code_checks_against(page):
    text = page.read_text(encoding="utf-8")
    header, code = HEADER.findall(text), CODE.findall(text)
    assert len(header) == 1, f"{page.name}: state '**Run time:** about N s on an idle 2-core CPU' once in the header"
    assert len(code) == 1, f"{page.name}: end with a cell calling glue_run_time(chapter_start, expected_s=N)"
    assert header == code, f"{page.name}: the header says {header[0]} s, glue_run_time expects {code[0]} s"
    assert int(header[0]) <= MAX_IDLE_S, f"{page.name}: {header[0]} s; move the long part to an artifact (CLI)"
    assert "{glue:text}`chapter_runtime_s" in text and "{glue:text}`chapter_load`" in text


def test_every_toc_page_is_a_notebook_with_launch_buttons():
    prose = [f for f in toc_files() if not is_notebook(REPO / "book" / f"{f}.md")]
    assert not prose, f"pages without code cells get no Colab/Binder buttons; make them MyST notebooks: {prose}"


def test_what_runs_where_lists_every_page_with_its_header_time():
    text = (REPO / "book" / "how_to_use.md").read_text(encoding="utf-8")
    table = text.split("## What runs where", 1)[1].split("\n## ", 1)[0]
    rows = {m.group(1): m.group(2) for m in re.finditer(r"^\| \[[^]]+\]\((\w+)\.md\) \| ([^|]+) \|", table, re.M)}
    missing = [f for f in toc_files() if f not in rows]
    assert not missing, f"how_to_use's 'What runs where' lacks {missing}"
    for stem, when in rows.items():
        page = REPO / "book" / f"{stem}.md"
        if page.exists() and HEADER.search(page.read_text(encoding="utf-8")):
            stated = HEADER.search(page.read_text(encoding="utf-8")).group(1)
            assert when.strip() == f"about {stated} s", f"{stem}: table says '{when.strip()}', header {stated} s"


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: str(p.relative_to(REPO)))
def test_no_placeholders_in_the_sources(source):
    if not source.is_file() or source.suffix in {".ipynb", ".json", ".pyc"}:
        return
    text = source.read_text(encoding="utf-8")
    found = [m.group(0) for pattern in PLACEHOLDERS for m in pattern.finditer(text)]
    assert not found, f"{source.relative_to(REPO)} has placeholders a reader cannot run: {found}"


def test_the_placeholder_check_can_fail():
    assert PLACEHOLDERS[0].search("--set train.epochs=N") and PLACEHOLDERS[0].search("data.train_size=<n>")
    assert not PLACEHOLDERS[0].search("--set train.epochs=120") and not PLACEHOLDERS[0].search("--nproc_per_node=N")
    assert HEADER.search("**Run time:** about 40 s on an idle 2-core CPU; no GPU")
