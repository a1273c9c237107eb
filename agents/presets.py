"""MPC recipes stored with the world model they were tuned for, so a result needs no recipe flags.

A world-model folder may hold ``mpc_presets.json``: ``{"recommended": {"samples": 32, ...}, "other": {...}}``,
each preset a set of planner and cost settings (fields of :class:`agents.mpc.MPCConfig`). ``--preset``
picks one: ``model`` (the default) is the model's ``recommended`` preset, or VP²'s settings where it has
none; ``vp2`` is VP²'s settings (200 samples x horizon 10, their noise, two context frames: the config's
defaults); any other name is looked up in the file. A flag given on the command line beats the preset.
"""
from __future__ import annotations

import json
from pathlib import Path


FILE = "mpc_presets.json"
MODEL, VP2, RECOMMENDED = "model", "vp2", "recommended"


def load_presets(model_dir: Path) -> dict[str, dict]:
    """The presets a world-model folder ships (empty where it has none)."""
    path = Path(model_dir) / FILE
    if not path.is_file():
        return {}
    try:
        presets = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: not valid JSON ({e})") from None
    if not isinstance(presets, dict) or not all(isinstance(v, dict) for v in presets.values()):
        raise ValueError(f"{path}: presets must be a JSON object of objects")
    return presets


def preset_values(name: str, model_dir: Path, fields: set[str]) -> dict:
    """The settings of preset ``name`` for the world model in ``model_dir`` (VP²'s: none to change)."""
    presets = load_presets(model_dir)
    if name == VP2 or (name == MODEL and RECOMMENDED not in presets):
        return {}
    key = RECOMMENDED if name == MODEL else name
    if key not in presets:
        known = ", ".join([MODEL, VP2, *sorted(presets)])
        raise ValueError(f"--preset {name}: {model_dir} has no such preset (known: {known})")
    values = presets[key]
    if unknown := sorted(set(values) - fields):
        raise ValueError(f"{model_dir / FILE}: preset {key} sets unknown settings {', '.join(unknown)}")
    return values


def apply_preset(values: dict, explicit: set[str], model_dir: Path, fields: set[str]) -> dict:
    """Parsed flag ``values`` with the preset's settings where the user gave no flag (lists become tuples)."""
    chosen = preset_values(values.get("preset", MODEL), model_dir, fields)
    return {**values, **{k: tuple(v) if isinstance(v, list) else v for k, v in chosen.items() if k not in explicit}}
