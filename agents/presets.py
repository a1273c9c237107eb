"""Agent recipes stored with the world model they were tuned for, so a result needs no recipe flags.

A world-model folder may hold ``presets.json``: ``{"recommended": {"samples": 32, ...}, "other": {...}}``,
each preset a set of agent settings: the MPC agent's planner and cost (fields of :class:`agents.mpc.MPCConfig`)
and the imitation agent's (fields of :class:`agents.imitation.ImitationConfig`). ``--preset`` picks one:
``model`` (the default) is the model's ``recommended`` preset, or the papers' settings where it has none;
``vp2`` is the papers' settings, the configs' defaults (for MPC VP²'s: 200 samples x horizon 10, their noise,
two context frames; for imitation VidIT's: one imagined future); any other name is looked up in the file. A
flag given on the command line beats the preset.
"""
from __future__ import annotations

import json
from pathlib import Path


FILE = "presets.json"
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


def preset_values(name: str, model_dir: Path, known: set[str]) -> dict:
    """The settings of preset ``name`` for the world model in ``model_dir`` (the papers': none to change);
    ``known`` are the settings a preset may hold."""
    presets = load_presets(model_dir)
    if name == VP2 or (name == MODEL and RECOMMENDED not in presets):
        return {}
    key = RECOMMENDED if name == MODEL else name
    if key not in presets:
        names = ", ".join([MODEL, VP2, *sorted(presets)])
        raise ValueError(f"--preset {name}: {model_dir} has no such preset (known: {names})")
    values = presets[key]
    if unknown := sorted(set(values) - known):
        raise ValueError(f"{model_dir / FILE}: preset {key} sets unknown settings {', '.join(unknown)}")
    return values


def apply_preset(values: dict, explicit: set[str], model_dir: Path, known: set[str]) -> dict:
    """Parsed flag ``values`` with the preset's settings where the user gave no flag (lists become tuples);
    settings the config lacks (an MPC benchmark has no imitation agent) are left out."""
    chosen = preset_values(values.get("preset", MODEL), model_dir, known)
    return {**values, **{k: tuple(v) if isinstance(v, list) else v for k, v in chosen.items()
                         if k in values and k not in explicit}}
