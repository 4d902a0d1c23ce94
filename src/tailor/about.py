"""What this package is: its distribution name, its version, and the checkout it runs from.

The version is written here once; setuptools reads it for the package metadata
(``[tool.setuptools.dynamic]`` in pyproject.toml) and ``tailor.__version__`` re-exports it.
The import package and the command are ``tailor``; the distribution on the package index is
``tailor-llm`` (``tailor`` there belongs to another project), so install hints name it.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

__version__ = "0.1.0"

DISTRIBUTION = "tailor-llm"

_PACKAGE_DIR = Path(__file__).resolve().parent


def install_hint(extra: str) -> str:
    """The command that installs one of tailor's extras, e.g. ``pip install 'tailor-llm[serve]'``."""
    return f"pip install '{DISTRIBUTION}[{extra}]'"


def git_commit() -> str | None:
    """The commit of the tailor checkout that is running, or None when tailor runs from an install.

    Only a source checkout counts (the package at ``src/tailor`` of the repository's top
    level): an installed copy inside some other repository, as in a project's ``.venv``,
    must not report that project's commit.
    """
    try:
        result = subprocess.run(["git", "rev-parse", "--show-toplevel", "HEAD"], cwd=_PACKAGE_DIR,
                                capture_output=True, text=True, timeout=5, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    lines = result.stdout.splitlines()
    if result.returncode != 0 or len(lines) != 2:
        return None
    top_level, commit = lines
    if Path(top_level).resolve() / "src" / "tailor" != _PACKAGE_DIR:
        return None
    return commit


def version_line() -> str:
    """What ``tailor --version`` prints: ``tailor 0.1.0``, plus ``(git abc1234)`` from a checkout."""
    commit = git_commit()
    return f"tailor {__version__}" + (f" (git {commit[:7]})" if commit else "")
