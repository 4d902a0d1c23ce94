"""Which engine and precision ``--backend default`` runs on this machine, and why.

int8 weights make a model fast only where the CPU multiplies 8-bit integers in its vector
units (x86's AVX-512 VNNI, AVX-VNNI or AMX; ARM's dot-product instructions): there the
default model's prefill through OpenVINO with int8 weights runs at about 4x the float32
transformers path (docs/benchmarks.md, on an AMD EPYC with AVX-512 VNNI). Without them the
int8 weights are widened back to float32 on the fly: prefill is no faster than float32 and
the replies move further from float32's (measured on an AVX2-only AMD EPYC: 0.95-1.1x the
transformers path, ROUGE-1 against the float32 replies 0.73). So:

- int8 dot product and OpenVINO installed: OpenVINO, int8 weights;
- otherwise: OpenVINO, float32 weights (the same replies as the float32 reference, and the
  fastest float32 decoding of the engines measured: 27 tokens/s against 24 for ONNX
  Runtime and 11-13 for transformers on that AVX2-only CPU).

``default:int8`` and ``default:fp32`` force one precision whatever the CPU. The rule reads
the CPU (:func:`tailor.machine.cpu`) and nothing else, so the choice is the same every time
on one machine, costs nothing to make, and can be tested with any CPU's features
(:func:`choose_default` takes them as an argument).
"""

from __future__ import annotations

import sys
from dataclasses import asdict, dataclass
from typing import Any

from tailor.machine import CPU, INT8_DOT_PRODUCT, cpu

PRECISIONS: tuple[str, ...] = ("int8", "fp32")


@dataclass(frozen=True)
class EngineChoice:
    """The engine and precision the default model runs with, and the reason in words."""

    engine: str
    precision: str
    reason: str
    forced: bool = False

    @property
    def spec(self) -> str:
        """The backend spec that loads exactly this choice (``default:int8``)."""
        return f"default:{self.precision}"

    def line(self) -> str:
        """One line for the terminal: ``engine: OpenVINO, int8 weights (why)``."""
        return f"engine: {self.engine}, {self.precision} weights ({self.reason})"

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def choose_default(machine_cpu: CPU, precision: str | None = None) -> EngineChoice:
    """The engine and precision for ``--backend default`` on ``machine_cpu``;
    ``precision`` (``int8`` or ``fp32``) forces one, as ``default:int8`` does."""
    if precision is not None:
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
        return EngineChoice("OpenVINO", precision, f"default:{precision} asked for {precision} weights", forced=True)
    dot = sorted(INT8_DOT_PRODUCT & set(machine_cpu.instruction_sets))
    if dot:
        return EngineChoice("OpenVINO", "int8", f"{machine_cpu.model} has int8 dot-product instructions "
                            f"({', '.join(dot)}): int8 weights run prefill about 4x faster than float32")
    found = ", ".join(machine_cpu.instruction_sets) or "no vector instruction set known"
    return EngineChoice("OpenVINO", "fp32", f"{machine_cpu.model} has no int8 dot-product instructions ({found}): "
                        "int8 weights would be no faster than float32 here and further from its replies")


def default_choice(precision: str | None = None) -> EngineChoice:
    """:func:`choose_default` for this machine's CPU."""
    return choose_default(cpu(), precision)


_ANNOUNCED: set[EngineChoice] = set()


def announce(choice: EngineChoice) -> None:
    """Print the choice on stderr, once per process and choice."""
    if choice in _ANNOUNCED:
        return
    _ANNOUNCED.add(choice)
    print(f"tailor: {choice.line()}", file=sys.stderr)


__all__ = ["PRECISIONS", "EngineChoice", "announce", "choose_default", "default_choice"]
