"""Scripted Crafter expert for every task of :data:`envs.crafter.TASKS`: breadth-first search on the true map.

Walkable cells are grass, sand and path without an object on them (lava and water are avoided).
For ``chop_wood``, ``eat_cow``, ``collect_sapling`` and ``drink_water`` the expert walks to a cell next to
the nearest tree, cow, free grass cell or water, turns to face it (moving into a blocked cell only turns
the player) and hits it with "do" (grass drops a sapling with probability 0.1, so it keeps hitting); it
replans every step, so moving cows are followed. With no target reachable it walks to the farthest
reachable cell, and when boxed in it moves at random. For ``walk_<direction>`` it walks to the nearest
cell one further that way than it has been so far, going around obstacles, and waits when there is none.
:class:`WalkPolicy` walks one way blindly.
"""
from __future__ import annotations

from collections import deque

import numpy as np
from crafter import objects

from envs.crafter import TASKS, WALKS, CrafterEnv

MOVES = {(-1, 0): "move_left", (1, 0): "move_right", (0, -1): "move_up", (0, 1): "move_down"}
WALKABLE = ("grass", "sand", "path")


class CrafterExpert:
    """Does ``env``'s task (see the module docstring); ``noise`` is the chance of a random action."""

    def __init__(self, env: CrafterEnv, noise: float = 0.0, seed: int | None = None):
        if env.task is None:
            raise ValueError(f"the Crafter expert does the env's task: give the env one of {', '.join(TASKS)}")
        self.env, self.noise = env, noise
        self._action_ids = {name: i for i, name in enumerate(env.action_names)}
        self.reset(seed)

    def reset(self, seed: int | None = None) -> None:
        self.rng = np.random.default_rng(seed)
        self._explore_goal: tuple[int, int] | None = None
        self._walked = 0  # the farthest the player has been along a walk task's direction

    def act(self, obs) -> int:
        if self.noise > 0 and self.rng.random() < self.noise:
            return int(self.rng.integers(len(self._action_ids)))
        return self._action_ids[self._plan()]

    # -- planning ------------------------------------------------------------------------------
    def _plan(self) -> str:
        player = self.env.player
        pos = (int(player.pos[0]), int(player.pos[1]))
        if self.env.task in WALKS:
            return self._walk(pos)
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

    def _walk(self, pos: tuple[int, int]) -> str:
        self._walked = max(self._walked, self.env.walked(self.env.task))
        (dx, dy), (sx, sy) = WALKS[self.env.task], self.env.start_pos
        xs, ys = np.indices(self.env.world.area)
        parents, goal = self._search(pos, (xs - sx) * dx + (ys - sy) * dy > self._walked)
        return "noop" if goal is None else MOVES[_first_step(parents, pos, goal)]

    def _targets(self) -> np.ndarray:
        """A bool map of the cells to hit: trees, cows, free grass cells or water."""
        world, task = self.env.world, self.env.task
        if task == "chop_wood":
            return world._mat_map == world._mat_ids["tree"]
        if task == "collect_sapling":
            return (world._mat_map == world._mat_ids["grass"]) & (world._obj_map == 0)
        if task == "drink_water":
            return world._mat_map == world._mat_ids["water"]
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
    """Walks one way (``left``, ``right``, ``up``, ``down``) blindly, into obstacles too; ``noise`` is the
    chance of a random action."""

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
