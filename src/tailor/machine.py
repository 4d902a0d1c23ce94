"""What machine tailor runs on: the CPU's model and the instruction sets that decide how fast
each engine and precision runs there, read from the CPU itself.

Every speed figure names its CPU (``tailor eval``'s results.json, the benchmarks, ``tailor
--version --verbose``): an int8 model is fast only where the CPU multiplies 8-bit integers in
its vector units (x86's AVX-512 VNNI, AVX-VNNI or AMX; ARM's dot-product instructions), and
the same engine can be 4x faster on one server than on another.

Read from ``/proc/cpuinfo`` on Linux and ``sysctl`` on macOS; nothing is imported and no
package is needed. Elsewhere the model is ``platform.processor()`` and no flag is known.
"""

from __future__ import annotations

import functools
import os
import platform
import subprocess
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

# Flags as /proc/cpuinfo spells them -> the instruction sets they mean.
_X86 = {"avx2": "avx2", "avx512f": "avx512", "avx512_vnni": "avx512_vnni", "avx_vnni": "avx_vnni",
        "amx_int8": "amx_int8", "amx_bf16": "amx_bf16", "avx512_bf16": "avx512_bf16"}
_ARM = {"asimddp": "arm_dotprod", "i8mm": "arm_i8mm", "sve": "arm_sve", "sve2": "arm_sve2", "bf16": "arm_bf16"}
INT8_DOT_PRODUCT = frozenset({"avx512_vnni", "avx_vnni", "amx_int8", "arm_dotprod", "arm_i8mm"})
"""The instruction sets that make int8 matrix products fast (8-bit multiplies summed in one
instruction); without one, an int8 model's prefill is no faster than float32's."""


@dataclass(frozen=True)
class CPU:
    """The CPU: its model name, architecture, logical cores, and the instruction sets of
    :data:`_X86`/:data:`_ARM` it has (sorted)."""

    model: str
    architecture: str
    cores: int
    instruction_sets: tuple[str, ...]

    @property
    def int8_dot_product(self) -> bool:
        """Whether it has int8 dot-product instructions (see :data:`INT8_DOT_PRODUCT`)."""
        return bool(INT8_DOT_PRODUCT & set(self.instruction_sets))

    def describe(self) -> str:
        """One line: ``AMD EPYC, x86_64, 2 cores, avx2 (no int8 dot product)``."""
        sets = ", ".join(self.instruction_sets) or "no instruction set known"
        int8 = "int8 dot product" if self.int8_dot_product else "no int8 dot product"
        return f"{self.model}, {self.architecture}, {self.cores} cores, {sets} ({int8})"

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "instruction_sets": list(self.instruction_sets),
                "int8_dot_product": self.int8_dot_product}


def cpu_from_flags(model: str, architecture: str, cores: int, flags: Iterable[str]) -> CPU:
    """A :class:`CPU` from the flags the operating system lists (x86 or ARM spellings)."""
    names = {**_X86, **_ARM}
    found = sorted({names[flag] for flag in flags if flag in names})
    return CPU(model.strip() or architecture, architecture, cores, tuple(found))


def _proc_cpuinfo(text: str) -> tuple[str, list[str]]:
    model, flags = "", list[str]()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip().lower()
        if key in ("model name", "hardware", "cpu model") and not model:
            model = value.strip()
        elif key in ("flags", "features") and not flags:
            flags = value.split()
    return model, flags


def _sysctl(name: str) -> str:
    try:
        done = subprocess.run(["sysctl", "-n", name], capture_output=True, text=True, timeout=2, check=False)
    except (OSError, subprocess.SubprocessError):
        return ""
    return done.stdout.strip() if done.returncode == 0 else ""


@functools.cache
def cpu() -> CPU:
    """This machine's CPU (read once per process)."""
    architecture, cores = platform.machine() or "unknown", os.cpu_count() or 1
    if os.path.isfile("/proc/cpuinfo"):
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as info:
            model, flags = _proc_cpuinfo(info.read())
        return cpu_from_flags(model or platform.processor(), architecture, cores, flags)
    if platform.system() == "Darwin":
        model = _sysctl("machdep.cpu.brand_string")
        flags = [flag.lower() for flag in _sysctl("machdep.cpu.features").split()]
        flags += [flag.lower() for flag in _sysctl("machdep.cpu.leaf7_features").split()]
        if _sysctl("hw.optional.arm.FEAT_DotProd") == "1":
            flags.append("asimddp")
        if _sysctl("hw.optional.arm.FEAT_I8MM") == "1":
            flags.append("i8mm")
        return cpu_from_flags(model, architecture, cores, [{"avx2.0": "avx2"}.get(f, f) for f in flags])
    return cpu_from_flags(platform.processor(), architecture, cores, [])


def machine() -> dict[str, Any]:
    """What a result records of the machine: the CPU, and the Python and system it ran."""
    return {"cpu": cpu().to_json(), "system": f"{platform.system()} {platform.release()}",
            "python": platform.python_version()}


def describe(info: Mapping[str, Any] | None = None) -> str:
    """One line for a report: the CPU of ``info`` (a :func:`machine` record) or of this machine."""
    if info is None:
        return cpu().describe()
    record = info.get("cpu", {})
    return CPU(str(record.get("model", "?")), str(record.get("architecture", "?")), int(record.get("cores", 0)),
               tuple(record.get("instruction_sets", ()))).describe()


__all__ = ["CPU", "INT8_DOT_PRODUCT", "cpu", "cpu_from_flags", "describe", "machine"]
