"""The adapter package and its command stay light until something is trained or served."""

from __future__ import annotations

import subprocess
import sys


def test_importing_the_adapter_modules_imports_no_torch_or_peft() -> None:
    code = ("import sys, tailor.adapters, tailor.training.jobs, tailor.adapters.runtime, tailor.adapters.train, "
            "tailor.adapters.soft_prompt, tailor.personalizers.adapters; "
            "print(sorted(m for m in ('torch', 'peft', 'transformers') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    assert result.stdout.strip() == "[]"
