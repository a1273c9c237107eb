"""``vidit/Crafter-v0``: one Crafter task as a gymnasium env.

- Tasks: ``chop_wood`` (achievement ``collect_wood``) and ``eat_cow`` (achievement ``eat_cow``).
- Observation: Crafter's 64x64x3 uint8 local view; 17 discrete actions (:attr:`CrafterEnv.action_names`).
- ``info["success"]``: the task's achievement has been unlocked at any step so far; reward is 1 on
  the step it first happens. ``terminated`` when the player dies; the registered ``TimeLimit``
  ends episodes after 100 steps.
- ``reset(seed=s)`` rebuilds the same 64x64 world and frames for the same ``s``.
"""
from __future__ import annotations

import gymnasium as gym
import numpy as np

from envs import import_quietly
from envs.actions import check_discrete_action

crafter = import_quietly("crafter")  # it imports old gym, which prints a banner
constants = crafter.constants

TASKS = {"chop_wood": "collect_wood", "eat_cow": "eat_cow"}


class _OrderedCrafter(crafter.Env):
    """``crafter.Env`` made reproducible across processes: it picks the creature to despawn from a set,
    whose order follows memory addresses; here the candidates are ordered by position."""

    def _balance_chunk(self, chunk, objs):
        super()._balance_chunk(chunk, sorted(objs, key=lambda obj: tuple(obj.pos)))


class CrafterEnv(gym.Env):
    """A Crafter world scored on one achievement; see the module docstring."""

    metadata = {"render_modes": ["rgb_array"], "render_fps": 10}
    action_names: tuple[str, ...] = tuple(constants.actions)

    def __init__(self, task: str = "chop_wood", render_mode: str | None = "rgb_array", size: int = 64):
        if task not in TASKS:
            raise ValueError(f"unknown Crafter task {task!r}; known: {', '.join(TASKS)}")
        self.task, self.achievement = task, TASKS[task]
        self.render_mode = render_mode
        self._env = _OrderedCrafter(area=(64, 64), size=(size, size), reward=False, length=None, seed=0)
        self.observation_space = gym.spaces.Box(0, 255, (size, size, 3), np.uint8)
        self.action_space = gym.spaces.Discrete(len(self.action_names))
        self._obs: np.ndarray | None = None
        self._success = False

    @property
    def world(self):
        """The inner ``crafter.engine.World`` (materials and objects)."""
        return self._env._world

    @property
    def player(self):
        """The inner ``crafter.objects.Player``."""
        return self._env._player

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        # Crafter seeds each world from (seed, episode index); pinning both makes reset reproducible.
        self._env._seed = int(self.np_random.integers(2**31 - 1))
        self._env._episode = 0
        self._obs = self._env.reset()
        self._success = False
        return self._obs, {"success": False, "achievements": dict(self.player.achievements)}

    def step(self, action):
        action = check_discrete_action(action, self.action_space)
        self._obs, _, _, inner = self._env.step(action)
        achievements = inner["achievements"]
        newly = not self._success and achievements[self.achievement] > 0
        self._success = self._success or newly
        terminated = self.player.health <= 0
        return self._obs, float(newly), terminated, False, {"success": self._success, "achievements": achievements}

    def render(self) -> np.ndarray | None:
        return self._obs if self.render_mode == "rgb_array" else None
