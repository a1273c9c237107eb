"""Real environments with the gymnasium API, scripted experts, episode datasets and video IO.

Importing ``envs`` registers the ids below with gymnasium; :func:`make` also takes short names.
This package imports no model.
"""
from __future__ import annotations

import contextlib
import importlib
import io
from types import ModuleType

import gymnasium as gym

from vidit.cli import UsageError

ENV_IDS = {
    "vidit/PushRed-v0": dict(entry_point="envs.robodesk:PushRedEnv", max_episode_steps=15),
    "vidit/RoboDesk-v0": dict(entry_point="envs.robodesk:RoboDeskEnv", max_episode_steps=15),
    "vidit/Crafter-v0": dict(entry_point="envs.crafter:CrafterEnv", max_episode_steps=100),
    "vidit/MineRLTreechop-v0": dict(entry_point="envs.minerl:MineRLTreechop", max_episode_steps=200),
}
SHORT_NAMES = {
    "push_red": "vidit/PushRed-v0", "pushred": "vidit/PushRed-v0",
    "robodesk": "vidit/RoboDesk-v0", "push_green": "vidit/RoboDesk-v0", "push_blue": "vidit/RoboDesk-v0",
    "crafter": "vidit/Crafter-v0", "chop_wood": "vidit/Crafter-v0", "eat_cow": "vidit/Crafter-v0",
    "collect_sapling": "vidit/Crafter-v0", "drink_water": "vidit/Crafter-v0", "walk_left": "vidit/Crafter-v0",
    "walk_right": "vidit/Crafter-v0", "walk_up": "vidit/Crafter-v0", "walk_down": "vidit/Crafter-v0",
    "minerl": "vidit/MineRLTreechop-v0", "treechop": "vidit/MineRLTreechop-v0",
}
# Short names that also pick a task.
SHORT_KWARGS = {"chop_wood": {"task": "chop_wood"}, "eat_cow": {"task": "eat_cow"},
                "collect_sapling": {"task": "collect_sapling"}, "drink_water": {"task": "drink_water"},
                "walk_left": {"task": "walk_left"}, "walk_right": {"task": "walk_right"},
                "walk_up": {"task": "walk_up"}, "walk_down": {"task": "walk_down"},
                "push_green": {"task": "push_green"}, "push_blue": {"task": "push_blue"}}

for _id, _spec in ENV_IDS.items():
    if _id not in gym.registry:
        gym.register(id=_id, **_spec)


def resolve(name: str) -> tuple[str, dict]:
    """A full env id and the kwargs a short name implies; ``UsageError`` listing the known ids."""
    if name in ENV_IDS:
        return name, {}
    key = name.lower().replace("-", "_")
    if key in SHORT_NAMES:
        return SHORT_NAMES[key], dict(SHORT_KWARGS.get(key, {}))
    known = ", ".join(list(ENV_IDS) + sorted(SHORT_NAMES))
    raise UsageError(f"unknown env {name!r}; known: {known}")


def make(name: str, **kwargs) -> gym.Env:
    """``gymnasium.make`` with short names (``robodesk``, ``push_red``, ``push_green``, ``crafter``, ``minerl``)."""
    env_id, implied = resolve(name)
    return gym.make(env_id, **{**implied, **kwargs})


def import_quietly(name: str) -> ModuleType:
    """Import ``name`` without the banner old ``gym`` prints to stderr (RoboDesk and Crafter import it)."""
    with contextlib.redirect_stderr(io.StringIO()):
        return importlib.import_module(name)
