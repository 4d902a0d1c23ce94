"""``--backend default`` chooses its engine and precision by the CPU: int8 weights only where
the CPU has int8 dot-product instructions, float32 elsewhere; ``default:int8`` and
``default:fp32`` force one; the choice and its reason go into results.json."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tailor.backends.choice import EngineChoice, announce, choose_default
from tailor.backends.echo import EchoBackend
from tailor.evaluation.runner import EvalConfig, evaluate
from tailor.machine import cpu_from_flags

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"

# The CPU classes users run on, as the operating system lists their flags.
AVX2_ONLY = cpu_from_flags("AMD EPYC 7B13", "x86_64", 2, ["sse2", "avx", "avx2", "fma"])
AVX512_NO_VNNI = cpu_from_flags("Intel(R) Xeon(R) Platinum 8168", "x86_64", 4, ["avx2", "avx512f", "avx512bw"])
AVX512_VNNI = cpu_from_flags("AMD EPYC 9R14", "x86_64", 2, ["avx2", "avx512f", "avx512_vnni", "avx512_bf16"])
AVX_VNNI = cpu_from_flags("12th Gen Intel(R) Core(TM) i7-1260P", "x86_64", 8, ["avx2", "avx_vnni"])
AMX = cpu_from_flags("Intel(R) Xeon(R) Platinum 8480+", "x86_64", 8, ["avx2", "avx512f", "amx_int8", "amx_bf16"])
GRAVITON2 = cpu_from_flags("", "aarch64", 4, ["fp", "asimd", "asimddp"])
ARM_OLD = cpu_from_flags("", "aarch64", 4, ["fp", "asimd"])
UNKNOWN = cpu_from_flags("", "riscv64", 4, [])


@pytest.mark.parametrize(("machine_cpu", "precision", "named"), [
    (AVX2_ONLY, "fp32", "avx2"),
    (AVX512_NO_VNNI, "fp32", "avx512"),
    (AVX512_VNNI, "int8", "avx512_vnni"),
    (AVX_VNNI, "int8", "avx_vnni"),
    (AMX, "int8", "amx_int8"),
    (GRAVITON2, "int8", "arm_dotprod"),
    (ARM_OLD, "fp32", "no vector instruction set known"),
    (UNKNOWN, "fp32", "no vector instruction set known"),
])
def test_int8_weights_only_where_the_cpu_multiplies_int8(machine_cpu, precision: str, named: str) -> None:
    choice = choose_default(machine_cpu)
    assert (choice.engine, choice.precision, choice.forced) == ("OpenVINO", precision, False)
    assert named in choice.reason  # the reason names what decided it
    assert ("no int8 dot-product" in choice.reason) is (precision == "fp32")
    assert choice.spec == f"default:{precision}"


@pytest.mark.parametrize("forced", ["int8", "fp32"])
def test_default_int8_and_fp32_force_a_precision_on_any_cpu(forced: str) -> None:
    for machine_cpu in (AVX2_ONLY, AVX512_VNNI, GRAVITON2):
        choice = choose_default(machine_cpu, forced)
        assert (choice.precision, choice.forced) == (forced, True) and f"default:{forced}" in choice.reason


def test_an_unknown_precision_is_refused_with_the_valid_ones() -> None:
    with pytest.raises(ValueError, match="int8, fp32.*'int4'"):
        choose_default(AVX2_ONLY, "int4")


def test_the_choice_is_printed_once_per_process(capsys: pytest.CaptureFixture[str]) -> None:
    choice = EngineChoice("OpenVINO", "fp32", "a reason only this test gives")
    announce(choice)
    announce(choice)
    printed = capsys.readouterr().err
    assert printed.count("a reason only this test gives") == 1
    assert "engine: OpenVINO, fp32 weights" in printed


def test_results_json_records_the_choice_and_the_cpu(tmp_path: Path) -> None:
    backend = EchoBackend()
    choice = choose_default(AVX2_ONLY)
    backend.choice = choice  # type: ignore[attr-defined]
    out = tmp_path / "run"
    config = EvalConfig(task="LaMP-4", data=str(FIXTURES / "lamp" / "LaMP_4"), split="dev", methods=("none",),
                        out=str(out))
    report = evaluate(config, backend=backend, progress=None)
    saved = json.loads((out / "results.json").read_text())
    assert saved["engine_choice"] == report.to_json()["engine_choice"] == choice.to_json()
    assert saved["engine_choice"]["precision"] == "fp32" and "avx2" in saved["engine_choice"]["reason"]
    assert saved["machine"]["cpu"]["instruction_sets"]
