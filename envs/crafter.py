"""``vidit/Crafter-v0``: a Crafter world with a behaviour suite of tasks; only a demo says which one.

- Tasks (:data:`TASKS`): ``chop_wood``, ``eat_cow``, ``collect_sapling`` and ``drink_water`` (Crafter's
  achievements ``collect_wood``, ``eat_cow``, ``collect_sapling``, ``collect_drink``), and
  ``walk_left`` / ``walk_right`` / ``walk_up`` / ``walk_down``: the player is :data:`WALK_DISTANCE` cells
  that way from where it started (``move_left`` is -x, ``move_up`` is -y).
- The task only scores: the same seed gives the same world and frames whatever the task (or ``None``).
- Observation: Crafter's 64x64x3 uint8 local view; 17 discrete actions (:attr:`CrafterEnv.action_names`).
- ``info["success"]``: the task has succeeded at any step so far (always False for ``task=None``, which
  scores nothing); reward is 1 on the step it first happens. ``info["task_success"]``: the same, for
  every task in :data:`TASKS`. ``terminated`` when the player dies; the registered ``TimeLimit`` ends
  episodes after 100 steps.
- ``reset(seed=s)`` rebuilds the same 64x64 world and frames for the same ``s``.
"""
from __future__ import annotations

import gymnasium as gym
import numpy as np

from envs import import_quietly
from envs.actions import check_discrete_action

crafter = import_quietly("crafter")  # it imports old gym, which prints a banner
constants = crafter.constants

TASKS = ("chop_wood", "eat_cow", "collect_sapling", "drink_water", "walk_left", "walk_right", "walk_up", "walk_down")
ACHIEVEMENTS = {"chop_wood": "collect_wood", "eat_cow": "eat_cow", "collect_sapling": "collect_sapling",
                "drink_water": "collect_drink"}
WALKS = {"walk_left": (-1, 0), "walk_right": (1, 0), "walk_up": (0, -1), "walk_down": (0, 1)}
WALK_DISTANCE = 5  # cells from the start position, along the walk's direction


class _OrderedCrafter(crafter.Env):
    """``crafter.Env`` made reproducible across processes: it picks the creature to despawn from a set,
    whose order follows memory addresses; here the candidates are ordered by position."""

    def _balance_chunk(self, chunk, objs):
        super()._balance_chunk(chunk, sorted(objs, key=lambda obj: tuple(obj.pos)))


class CrafterEnv(gym.Env):
    """A Crafter world scored on one task of :data:`TASKS` (or none); see the module docstring."""

    metadata = {"render_modes": ["rgb_array"], "render_fps": 10}
    action_names: tuple[str, ...] = tuple(constants.actions)

    def __init__(self, task: str | None = "chop_wood", render_mode: str | None = "rgb_array", size: int = 64):
        if task is not None and task not in TASKS:
            raise ValueError(f"unknown Crafter task {task!r}; known: {', '.join(TASKS)} (or None)")
        self.task = task
        self.render_mode = render_mode
        self._env = _OrderedCrafter(area=(64, 64), size=(size, size), reward=False, length=None, seed=0)
        self.observation_space = gym.spaces.Box(0, 255, (size, size, 3), np.uint8)
        self.action_space = gym.spaces.Discrete(len(self.action_names))
        self._obs: np.ndarray | None = None
        self.start_pos = (0, 0)
        self._task_success = dict.fromkeys(TASKS, False)

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
        self.start_pos = (int(self.player.pos[0]), int(self.player.pos[1]))
        self._task_success = dict.fromkeys(TASKS, False)
        return self._obs, self._info(dict(self.player.achievements))

    def step(self, action):
        action = check_discrete_action(action, self.action_space)
        self._obs, _, _, inner = self._env.step(action)
        achievements = inner["achievements"]
        before = self._task_success.get(self.task, False)
        self._task_success = {task: done or self._achieved(task, achievements)
                              for task, done in self._task_success.items()}
        newly = self._task_success.get(self.task, False) and not before
        terminated = self.player.health <= 0
        return self._obs, float(newly), terminated, False, self._info(achievements)

    def walked(self, task: str) -> int:
        """Cells the player is from its start position along walk ``task``'s direction."""
        (dx, dy), (x, y) = WALKS[task], self.player.pos
        return int((x - self.start_pos[0]) * dx + (y - self.start_pos[1]) * dy)

    def _achieved(self, task: str, achievements: dict) -> bool:
        if task in ACHIEVEMENTS:
            return achievements[ACHIEVEMENTS[task]] > 0
        return self.walked(task) >= WALK_DISTANCE

    def _info(self, achievements: dict) -> dict:
        return {"success": self._task_success.get(self.task, False), "task_success": dict(self._task_success),
                "achievements": achievements}

    def render(self) -> np.ndarray | None:
        return self._obs if self.render_mode == "rgb_array" else None
