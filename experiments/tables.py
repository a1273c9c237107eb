"""Benchmark outputs shared by every ``experiments`` script: a markdown + CSV table and a JSON of results,
and the guard that keeps one ``--out`` folder to one configuration (so reruns resume, never mix).

Each file is written atomically; the markdown heads its table with the date and the machine.
"""
from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import json
import os
import platform
import time
from pathlib import Path

from vidit.cli import UsageError
from vidit.files import atomic_write_bytes, write_json

CONFIG_FILE = "bench_config.json"


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


def claim_out(out: Path, config: dict, may_differ: frozenset[str] = frozenset(), defaults: dict | None = None) -> None:
    """Refuse an ``out`` folder holding results of another ``config`` (JSON-able; keys in ``may_differ``
    may change between runs; a key the saved config lacks, added to the benchmark later, matches at its
    value in ``defaults``); else record ``config`` there as ``bench_config.json``."""
    path = out / CONFIG_FILE
    if path.is_file():
        saved = json.loads(path.read_text())
        saved = {**{k: v for k, v in (defaults or {}).items() if k in config}, **saved}
        diffs = sorted(k for k in set(saved) | set(config) if saved.get(k) != config.get(k) and k not in may_differ)
        if diffs:
            raise UsageError(f"{out} holds a run with other settings ({', '.join(diffs)}: "
                             f"{', '.join(f'{saved.get(k)} -> {config.get(k)}' for k in diffs)}); "
                             "use another --out to keep results apart")
    elif out.is_dir() and any(out.iterdir()):
        raise UsageError(f"{out} is not empty and holds no {CONFIG_FILE}; use an empty or new --out")
    write_json(path, config)


def weights_digest(folder: str | Path) -> str:
    """The first 12 hex digits of the sha256 over every ``*.safetensors`` file under ``folder`` (a model's hash)."""
    h = hashlib.sha256()
    for path in sorted(Path(folder).rglob("*.safetensors")):
        h.update(path.read_bytes())
    return h.hexdigest()[:12]
