"""Scripted Crafter expert: breadth-first search on the true map to the nearest tree or cow, then "do".

Walkable cells are grass, sand and path without an object on them (lava and water are avoided).
The expert walks to a cell next to the nearest target, turns to face it (moving into a blocked cell
only turns the player) and hits it; it replans every step, so moving cows are followed. With no
target reachable it walks to the farthest reachable cell, and when boxed in it moves at random.
:class:`WalkPolicy` walks one way (more behaviour classes for in-context evaluation).
"""
from __future__ import annotations

from collections import deque

import numpy as np
from crafter import objects

from envs.crafter import CrafterEnv

MOVES = {(-1, 0): "move_left", (1, 0): "move_right", (0, -1): "move_up", (0, 1): "move_down"}
WALKABLE = ("grass", "sand", "path")


class CrafterExpert:
    """Chops trees (``chop_wood``) or hunts cows (``eat_cow``); ``noise`` is the chance of a random action."""

    def __init__(self, env: CrafterEnv, noise: float = 0.0, seed: int | None = None):
        self.env, self.noise = env, noise
        self._action_ids = {name: i for i, name in enumerate(env.action_names)}
        self.reset(seed)

    def reset(self, seed: int | None = None) -> None:
        self.rng = np.random.default_rng(seed)
        self._explore_goal: tuple[int, int] | None = None

    def act(self, obs) -> int:
        if self.noise > 0 and self.rng.random() < self.noise:
            return int(self.rng.integers(len(self._action_ids)))
        return self._action_ids[self._plan()]

    # -- planning ------------------------------------------------------------------------------
    def _plan(self) -> str:
        player = self.env.player
        pos = (int(player.pos[0]), int(player.pos[1]))
        targets = self._targets()
        adjacent = [d for d in MOVES if _inside(_add(pos, d), targets.shape) and targets[_add(pos, d)]]
        if adjacent:
            facing = tuple(int(f) for f in player.facing)
            return "do" if facing in adjacent else MOVES[adjacent[0]]
        parents, goal = self._search(pos, _next_to(targets))
        goal = goal or self._explore(parents, pos)
        if goal is None:
            return MOVES[list(MOVES)[self.rng.integers(4)]]
        return MOVES[_first_step(parents, pos, goal)]

    def _targets(self) -> np.ndarray:
        """A bool map of the cells to hit: trees, or cows."""
        world = self.env.world
        if self.env.task == "chop_wood":
            return world._mat_map == world._mat_ids["tree"]
        mask = np.zeros(world.area, bool)
        for obj in world.objects:
            if isinstance(obj, objects.Cow):
                mask[tuple(obj.pos)] = True
        return mask

    def _free(self) -> np.ndarray:
        world = self.env.world
        ids = [world._mat_ids[m] for m in WALKABLE]
        return np.isin(world._mat_map, ids) & (world._obj_map == 0)

    def _search(self, start: tuple[int, int], goals: np.ndarray) -> tuple[dict, tuple[int, int] | None]:
        """Breadth-first search over free cells to the nearest goal cell; the parent links it made
        (every reachable cell, in order of distance, when no goal is reachable) and that goal."""
        free = self._free()
        parents: dict[tuple[int, int], tuple[int, int] | None] = {start: None}
        queue = deque([start])
        while queue:
            cell = queue.popleft()
            for step in MOVES:
                nxt = _add(cell, step)
                if nxt not in parents and _inside(nxt, free.shape) and free[nxt]:
                    parents[nxt] = cell
                    if goals[nxt]:
                        return parents, nxt
                    queue.append(nxt)
        return parents, None

    def _explore(self, parents: dict, pos: tuple[int, int]) -> tuple[int, int] | None:
        """Keep walking to the farthest reachable cell seen when no target was reachable."""
        if self._explore_goal in (None, pos) or self._explore_goal not in parents:
            self._explore_goal = list(parents)[-1] if len(parents) > 1 else None
        return self._explore_goal


class WalkPolicy:
    """Walks one way (``left``, ``right``, ``up``, ``down``); ``noise`` is the chance of a random action.
    A class of behaviour for in-context demos beyond the two tasks."""

    def __init__(self, env: CrafterEnv, direction: str, noise: float = 0.0, seed: int | None = None):
        self.action = env.action_names.index(f"move_{direction}")
        self.n, self.noise = len(env.action_names), noise
        self.reset(seed)

    def reset(self, seed: int | None = None) -> None:
        self.rng = np.random.default_rng(seed)

    def act(self, obs) -> int:
        if self.noise > 0 and self.rng.random() < self.noise:
            return int(self.rng.integers(self.n))
        return self.action


def _next_to(mask: np.ndarray) -> np.ndarray:
    """Cells with a 4-neighbour in ``mask``."""
    padded = np.pad(mask, 1)
    return padded[:-2, 1:-1] | padded[2:, 1:-1] | padded[1:-1, :-2] | padded[1:-1, 2:]


def _first_step(parents: dict, start: tuple[int, int], goal: tuple[int, int]) -> tuple[int, int]:
    cell = goal
    while parents[cell] != start:
        cell = parents[cell]
    return cell[0] - start[0], cell[1] - start[1]


def _add(cell: tuple[int, int], step: tuple[int, int]) -> tuple[int, int]:
    return cell[0] + step[0], cell[1] + step[1]


def _inside(cell: tuple[int, int], shape: tuple[int, ...]) -> bool:
    return 0 <= cell[0] < shape[0] and 0 <= cell[1] < shape[1]
