"""Training checkpoints shared by the trainers (world model, IDM, classifier): what a resumed run must
share with the run that wrote the checkpoint, and atomic save / checked load."""
from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

from vidit.cli import UsageError
from vidit.files import atomic_path
from vidit.runs import differences

VOLATILE = ("out", "max_steps", "max_minutes", "eval_every", "device", "threads")  # may change when a run is resumed


def identity(cfg: Any) -> dict:
    """A config dataclass as JSON-able settings, without those a resumed run may change."""
    return {k: [str(x) for x in v] if isinstance(v, tuple) else str(v) if isinstance(v, Path) else v
            for k, v in asdict(cfg).items() if k not in VOLATILE}


def save(path: Path, cfg: Any, step: int, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
         state: dict | None = None) -> None:
    """``state``: the trainer's own small values a resumed run needs (e.g. the best loss so far)."""
    with atomic_path(path) as tmp:
        torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(), "step": step,
                    "config": identity(cfg), "state": state or {}}, tmp)


def resume(path: Path, cfg: Any, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
           map_location: Any = None, state: dict | None = None) -> int:
    """Load ``path`` into ``model``, ``optimizer`` (and ``state``, updated in place) and return its step
    (0 without a checkpoint); ``UsageError`` naming the differing settings if another run wrote it."""
    if not path.is_file():
        return 0
    ckpt = torch.load(path, map_location=map_location, weights_only=False)
    if differ := differences(ckpt["config"], identity(cfg)):
        raise UsageError(f"{path.parent} holds a checkpoint of another run ({'; '.join(differ)}); use another --out")
    model.load_state_dict(ckpt["model"])
    optimizer.load_state_dict(ckpt["optimizer"])
    if state is not None:
        state.update(ckpt.get("state", {}))
    return int(ckpt["step"])
