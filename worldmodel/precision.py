"""Which dtype the world model computes in: ``float32`` (exact, the recorded benchmarks' path),
``bfloat16`` (faster where the hardware has bfloat16 units, approximate), or ``auto``: bfloat16 on a
CUDA GPU that supports it or a CPU with AMX/AVX512-BF16 (read from ``/proc/cpuinfo``), else float32.
"""
from __future__ import annotations

from dataclasses import field
from functools import lru_cache
from pathlib import Path
from typing import Literal

import torch

Precision = Literal["float32", "bfloat16", "auto"]
BF16_FLAGS = ("amx_bf16", "avx512_bf16")


def device_field():
    """The ``--device`` option of the commands that run a world model."""
    return field(default="cpu", metadata={"help": "where the world model runs (cpu, cuda, cuda:1...)"})


def precision_field():
    """The ``--precision`` option of the commands that run a world model."""
    return field(default="float32", metadata={
        "help": "world-model compute: float32 (exact), bfloat16 (faster where the CPU has AMX/AVX512-BF16; "
                "approximate), auto (bfloat16 where the hardware has it)"})


@lru_cache(maxsize=None)
def cpu_has_bf16() -> bool:
    """Whether this CPU multiplies bfloat16 in hardware (AMX or AVX512-BF16); False where unknown."""
    try:
        flags = Path("/proc/cpuinfo").read_text().split()
    except OSError:
        return False
    return any(f in flags for f in BF16_FLAGS)


def resolve_dtype(precision: Precision, device: str | torch.device = "cpu") -> torch.dtype:
    if precision not in ("float32", "bfloat16", "auto"):
        raise ValueError(f"precision must be float32, bfloat16 or auto, got {precision!r}")
    if precision != "auto":
        return getattr(torch, precision)
    device = torch.device(device)
    fast = torch.cuda.is_bf16_supported() if device.type == "cuda" else cpu_has_bf16()
    return torch.bfloat16 if fast else torch.float32
