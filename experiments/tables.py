"""Benchmark outputs shared by every ``experiments`` script: a markdown + CSV table and a JSON of results,
plots, and model hashes (one ``--out`` per configuration: :func:`vidit.runs.claim_out`).

Each file is written atomically; the markdown heads its table with the date and the machine.
"""
from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import os
import platform
import time
from pathlib import Path

from vidit.files import atomic_write_bytes, write_json


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


@contextlib.contextmanager
def figure(path: Path, nrows: int = 1, ncols: int = 1, **kwargs):
    """``with figure(path, 1, 2, figsize=...) as (fig, axes):`` draw; on leaving, the figure is laid out
    and saved as PNG atomically (headless matplotlib). ``axes`` is always a 2-D array."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(nrows, ncols, squeeze=False, **kwargs)
    try:
        yield fig, axes
        fig.tight_layout()
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=100)
        atomic_write_bytes(path, buf.getvalue())
    finally:
        plt.close(fig)


def weights_digest(folder: str | Path) -> str:
    """The first 12 hex digits of the sha256 over every ``*.safetensors`` file under ``folder`` (a model's hash)."""
    h = hashlib.sha256()
    for path in sorted(Path(folder).rglob("*.safetensors")):
        h.update(path.read_bytes())
    return h.hexdigest()[:12]
