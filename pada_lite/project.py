"""Where the project lives: the one place its repository address is written.

The book's launch buttons, the Colab install cell and the artifact downloads all read it from here. It is a
placeholder until the repository is published: change this one line then.
"""
from __future__ import annotations

REPOSITORY = "pada-lite/pada-lite"   # GitHub owner/name (placeholder until the repository is published)
BRANCH = "main"                      # branch whose files the launch buttons and downloads use


def repository_url() -> str:
    """The repository's web address."""
    return f"https://github.com/{REPOSITORY}"


def raw_url(path: str, ref: str = BRANCH) -> str:
    """Download address of one file of the repository at ``ref``."""
    return f"https://raw.githubusercontent.com/{REPOSITORY}/{ref}/{path.lstrip('/')}"
