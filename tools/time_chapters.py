"""Execute chapters one at a time, as the book's build does, and print each one's wall time with the machine's load.

    python tools/time_chapters.py book/tau_schedule.md book/searches.md   # some chapters
    python tools/time_chapters.py                                         # every chapter of _toc.yml
    python tools/time_chapters.py --glue book/intro.md                    # also print the values it glues

Each chapter runs alone in a fresh kernel (cwd book/, ``PADA_LITE_FIGURES=html``, ``OMP_NUM_THREADS=1`` unless
set, this checkout's ``pada_lite``), so a time measured here is the time its "ran in" header shows after
``make book`` on the same machine. The
1-minute load average before and after each run is printed beside it: on a shared machine a time is only
comparable with the load it was measured under.
"""
from __future__ import annotations

import os
import platform
import sys
import time
from pathlib import Path

import jupytext
import yaml
from nbclient import NotebookClient

REPO = Path(__file__).resolve().parent.parent
CELL_TIMEOUT_S = 900


def toc_chapters() -> list[Path]:
    """The executable chapters of ``_toc.yml``, in book order (MyST notebooks only)."""
    toc = yaml.safe_load((REPO / "_toc.yml").read_text())
    files = [toc["root"]] + [ch["file"] for part in toc.get("parts", []) for ch in part.get("chapters", [])]
    paths = [REPO / f"{f}.md" for f in files]
    return [p for p in paths if "format_name: myst" in p.read_text(encoding="utf-8").split("\n---", 1)[0]]


def cpu_kind() -> str:
    """The CPU's model name (Linux) or platform string."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def run_chapter(md: Path) -> tuple[float, dict]:
    """Execute chapter ``md`` in a fresh kernel: its wall time in seconds and the values it glued (text/plain)."""
    nb = jupytext.read(md)
    client = NotebookClient(nb, timeout=CELL_TIMEOUT_S, kernel_name="python3",
                            resources={"metadata": {"path": str(md.parent)}})
    start = time.perf_counter()
    client.execute()
    seconds = time.perf_counter() - start
    glued = {out["metadata"]["scrapbook"]["name"]: out["data"].get("application/papermill.record/text/plain")
             for cell in nb.cells for out in cell.get("outputs", [])
             if "scrapbook" in out.get("metadata", {})}
    return seconds, glued


def main(argv: list[str]) -> int:
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    os.environ["PADA_LITE_FIGURES"] = "html"
    # the kernels import this checkout's pada_lite, whatever the environment has installed
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    mirror = REPO.parent / "shared" / "data" / "mirror"
    if "PADA_LITE_MIRROR" not in os.environ and mirror.is_dir():
        os.environ["PADA_LITE_MIRROR"] = str(mirror)
    show_glue = "--glue" in argv
    chapters = [Path(a).resolve() for a in argv if a != "--glue"] or toc_chapters()
    print(f"CPU: {cpu_kind()}, {os.cpu_count()} cores, OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']}")
    total = 0.0
    for md in chapters:
        load_before = os.getloadavg()[0]
        seconds, glued = run_chapter(md)
        total += seconds
        print(f"{md.stem:24s} {seconds:6.1f} s   load {load_before:.2f} -> {os.getloadavg()[0]:.2f}", flush=True)
        for name, value in glued.items() if show_glue else ():
            print(f"    {name} = {value}")
    print(f"{'total':24s} {total:6.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
