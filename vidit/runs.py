"""Is this the same run? One answer for every resumable output: trainer checkpoints, datasets, agent runs
and benchmark folders. A run records the settings that decide its result; a later run with the same
``--out`` resumes only if its settings match, else it is refused with one line naming what differs."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Iterable

from vidit.cli import UsageError
from vidit.files import write_json

CONFIG_FILE = "bench_config.json"


def differences(saved: dict, config: dict, may_differ: Iterable[str] = (), defaults: dict | None = None,
                only: Iterable[str] | None = None, retired: dict | None = None) -> list[str]:
    """``"key: saved -> new"`` for every setting that differs. Keys in ``may_differ`` may change between runs;
    a key ``saved`` lacks (added to the code later) matches at its value in ``defaults``; ``only`` limits the
    comparison to those keys (default: every key either side has). ``retired`` maps settings the code no
    longer has to the value that behaves as the code does now: a run saved at that value matches, at another
    it differs."""
    saved = {**{k: v for k, v in (defaults or {}).items() if k in config}, **saved}
    gone = [f"{k}: {saved[k]!r} (retired: only {v!r} is still done)" for k, v in (retired or {}).items()
            if k in saved and k not in config and saved[k] != v]
    saved = {k: v for k, v in saved.items() if k not in (retired or {}) or k in config}
    keys = set(only) if only is not None else set(saved) | set(config)
    skip = set(may_differ)
    return gone + [f"{k}: {saved.get(k)!r} -> {config.get(k)!r}" for k in sorted(keys - skip)
                   if saved.get(k) != config.get(k)]


def claim_out(out: Path, config: dict, may_differ: Iterable[str] = (), defaults: dict | None = None,
              retired: dict | None = None) -> None:
    """Refuse an ``out`` folder holding results of another ``config`` (JSON-able, see :func:`differences`);
    else record ``config`` there as ``bench_config.json``."""
    path = out / CONFIG_FILE
    if path.is_file():
        if diffs := differences(json.loads(path.read_text()), config, may_differ, defaults, retired=retired):
            raise UsageError(f"{out} holds a run with other settings ({'; '.join(diffs)}); "
                             "use another --out to keep results apart")
    elif out.is_dir() and any(out.iterdir()):
        raise UsageError(f"{out} is not empty and holds no {CONFIG_FILE}; use an empty or new --out")
    write_json(path, config)
