"""The data home: where artifacts (results, ground truth) and downloads live, in a checkout or not.

The data home is ``$PADA_LITE_HOME``; else the checkout's ``data/`` when the package runs from a source checkout;
else a per-user folder (``$XDG_CACHE_HOME/pada_lite``, by default ``~/.cache/pada_lite``). New artifacts are written
there. The committed artifacts also ship inside the wheel (``pada_lite/_data``, the checkout's ``data/`` as package
data), so :func:`locate` finds an artifact in the data home, else in the installed package: the chapters that load
artifacts run from a pip-installed package (Colab) as from a checkout.
"""
from __future__ import annotations

import os
from pathlib import Path

HOME_ENV = "PADA_LITE_HOME"
PACKAGE = Path(__file__).resolve().parent
PACKAGED_DATA = PACKAGE / "_data"  # the checkout's data/ inside an installed wheel


def checkout_root() -> Path | None:
    """The source checkout the package runs from (it holds pyproject.toml and data/), or None when installed."""
    root = PACKAGE.parent
    return root if (root / "pyproject.toml").is_file() and (root / "data").is_dir() else None


def data_home() -> Path:
    """``$PADA_LITE_HOME``, else ``<checkout>/data``, else ``$XDG_CACHE_HOME/pada_lite`` (``~/.cache/pada_lite``)."""
    if os.environ.get(HOME_ENV):
        return Path(os.environ[HOME_ENV]).expanduser()
    root = checkout_root()
    if root is not None:
        return root / "data"
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache").expanduser() / "pada_lite"


def locate(path: str | Path) -> Path:
    """``path`` if it exists; else, for a path inside the data home, the installed package's copy if there is one;
    else ``path`` (its reader reports it missing)."""
    path = Path(path)
    if path.exists():
        return path
    try:
        packaged = PACKAGED_DATA / path.resolve().relative_to(data_home().resolve())
    except ValueError:
        return path
    return packaged if packaged.exists() else path
