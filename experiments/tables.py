"""Benchmark outputs shared by every ``experiments`` script: a markdown + CSV table and a JSON of results.

Each file is written atomically; the markdown heads its table with the date and the machine.
"""
from __future__ import annotations

import csv
import io
import os
import platform
import time
from pathlib import Path

from envs.files import atomic_write_bytes, write_json


def machine() -> str:
    """A one-line description of this machine, e.g. ``x86_64, 2 cores, no GPU``."""
    try:
        import torch
        gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    except ImportError:
        gpu = "no GPU"
    return f"{platform.machine()}, {len(os.sched_getaffinity(0))} cores, {gpu}"


def write_table(out: Path, name: str, rows: list[dict], keys: list[str], meta: dict) -> dict:
    """Write ``name.md``, ``name.csv`` and ``name.json`` (rows + ``meta`` + date + machine) to ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    stamp = {"date": time.strftime("%Y-%m-%d"), "machine": machine()}
    md = [f"Measured {stamp['date']} on {stamp['machine']}.", "",
          "| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    md += ["| " + " | ".join(str(r.get(k, "")) for k in keys) + " |" for r in rows]
    atomic_write_bytes(out / f"{name}.md", ("\n".join(md) + "\n").encode())
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=keys, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_bytes(out / f"{name}.csv", buf.getvalue().encode())
    write_json(out / f"{name}.json", {**stamp, **meta, "rows": rows})
    return stamp


def save_figure(fig, path: Path) -> None:
    """Save a matplotlib figure as PNG, atomically."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    atomic_write_bytes(path, buf.getvalue())
