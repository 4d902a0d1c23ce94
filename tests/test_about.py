"""The version, the distribution name in install hints, and the checkout's git commit."""

from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess
from pathlib import Path
from types import ModuleType

import pytest

import tailor
from tailor import about
from tailor.cli.main import main
from tailor.registry import MissingExtraError, require

ROOT = Path(__file__).resolve().parents[1]
needs_git = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")


def git(*args: str, cwd: Path) -> str:
    return subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.org", *args], cwd=cwd,
                          capture_output=True, text=True, check=True).stdout.strip()


def about_copy_at(package_dir: Path) -> ModuleType:
    """A copy of tailor/about.py placed at ``package_dir``, loaded as its own module."""
    package_dir.mkdir(parents=True)
    shutil.copy(about.__file__, package_dir / "about.py")
    spec = importlib.util.spec_from_file_location(f"about_copy_{abs(hash(package_dir))}", package_dir / "about.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_version_is_one_string_everywhere() -> None:
    assert re.fullmatch(r"\d+\.\d+\.\d+([.-]?(a|b|rc|dev)\d+)?", about.__version__)
    assert tailor.__version__ == about.__version__


def test_version_prints_the_version_and_the_checkout_commit(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--version"]) == 0
    printed = capsys.readouterr().out.strip()
    commit = about.git_commit()
    if commit is None:  # tests run from an unpacked sdist: no checkout, no commit
        assert printed == f"tailor {about.__version__}"
    else:
        assert printed == f"tailor {about.__version__} (git {commit[:7]})"


@needs_git
def test_git_commit_is_the_checkouts_head() -> None:
    if not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    assert about.git_commit() == git("rev-parse", "HEAD", cwd=ROOT)


@needs_git
def test_git_commit_is_reported_only_for_a_tailor_checkout(tmp_path: Path) -> None:
    git("init", "-q", cwd=tmp_path)
    checkout_copy = about_copy_at(tmp_path / "src" / "tailor")
    installed_copy = about_copy_at(tmp_path / ".venv" / "lib" / "site-packages" / "tailor")
    git("add", "src", cwd=tmp_path)
    git("commit", "-q", "-m", "one", cwd=tmp_path)
    head = git("rev-parse", "HEAD", cwd=tmp_path)

    assert checkout_copy.git_commit() == head
    assert checkout_copy.version_line() == f"tailor {about.__version__} (git {head[:7]})"
    # An installed tailor inside someone's project must not claim that project's commit.
    assert installed_copy.git_commit() is None
    assert installed_copy.version_line() == f"tailor {about.__version__}"


def test_outside_any_repository_there_is_no_commit(tmp_path: Path) -> None:
    assert about_copy_at(tmp_path / "src" / "tailor").git_commit() is None


def test_install_hints_name_our_distribution() -> None:
    assert about.install_hint("serve") == "pip install 'tailor-llm[serve]'"
    with pytest.raises(MissingExtraError, match=re.escape("pip install 'tailor-llm[serve]'")):
        require("tailor_test_no_such_module", "serve")
