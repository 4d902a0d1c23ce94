"""The machine named in every figure: the CPU's model and the instruction sets that decide how
fast each engine runs, read from what the operating system lists."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tailor.cli.main import main
from tailor.machine import _proc_cpuinfo, cpu, cpu_from_flags, describe, machine

EPYC_ZEN3 = "processor\t: 0\nmodel name\t: AMD EPYC 7B13\nflags\t\t: fpu sse sse2 avx avx2 fma bmi2\n"
XEON_SPR = ("model name\t: Intel(R) Xeon(R) Platinum 8480+\n"
            "flags\t\t: avx2 avx512f avx512_vnni avx512_bf16 amx_bf16 amx_int8 amx_tile\n")
GRAVITON = "processor\t: 0\nFeatures\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics asimddp sve i8mm bf16\n"


@pytest.mark.parametrize(("text", "model", "sets", "int8"), [
    (EPYC_ZEN3, "AMD EPYC 7B13", ("avx2",), False),
    (XEON_SPR, "Intel(R) Xeon(R) Platinum 8480+",
     ("amx_bf16", "amx_int8", "avx2", "avx512", "avx512_bf16", "avx512_vnni"), True),
    (GRAVITON, "aarch64", ("arm_bf16", "arm_dotprod", "arm_i8mm", "arm_sve"), True),
])
def test_instruction_sets_are_read_from_the_flags(text: str, model: str, sets: tuple[str, ...], int8: bool) -> None:
    name, flags = _proc_cpuinfo(text)
    found = cpu_from_flags(name, "aarch64" if "asimd" in text else "x86_64", 2, flags)
    assert found.model == model and found.instruction_sets == sets and found.int8_dot_product is int8
    assert ("no int8 dot product" in found.describe()) is not int8


def test_a_run_and_the_version_name_this_machine(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    here = machine()
    assert here["cpu"]["model"] == cpu().model and here["cpu"]["cores"] >= 1
    assert describe(here) == cpu().describe()
    assert main(["--version", "--verbose"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].startswith("tailor ") and f"cpu: {cpu().describe()}" in out
    data = Path(__file__).parent / "fixtures" / "lamp" / "LaMP_4"
    result = tmp_path / "run"
    assert main(["eval", "--task", "LaMP-4", "--data", str(data), "--backend", "echo", "--method", "none",
                 "--out", str(result), "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    saved = json.loads((result / "results.json").read_text())
    assert printed["machine"] == saved["machine"] == here
