"""README.md's Python example runs as written (on the scripted echo backend instead of the
default model, in a temporary folder)."""

from __future__ import annotations

import re
import runpy
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


def test_the_readme_python_example_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), flags=re.DOTALL)
    assert blocks, "README.md has no Python example"
    code = blocks[0]
    assert 'load_backend("default")' in code
    script = tmp_path / "example.py"
    script.write_text(code.replace('load_backend("default")', 'load_backend("echo")'), encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    runpy.run_path(str(script), run_name="__main__")
    printed = capsys.readouterr().out
    # The echo backend answers with the prompt up to the stop string: its first line, the
    # header that leads the retrieved records (shown only when a record was retrieved).
    assert printed.strip() == "Headlines this journalist wrote for earlier articles:"
