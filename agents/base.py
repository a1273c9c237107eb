"""The agent protocol every closed-loop controller follows, and the baselines that need no model.

Agents act on a batch of parallel episodes (one env each), so a model-based agent plans for all of
them in one batched call; a single episode is a batch of one.
"""
from __future__ import annotations

from typing import Any, Protocol, Sequence

import gymnasium as gym
import numpy as np

from envs.experts import make_policy


class Agent(Protocol):
    """``reset`` at the episodes' first observations (with an optional demo ``[T, H, W, 3]``, one seed
    per episode and the envs' goal images where they have one), then ``act`` on each step's
    observations; ``active[i]`` False skips a finished episode (its action is None). ``predictions[i]`` is the frame the agent expects episode ``i``'s env to show
    after its last action (None when it does not imagine), shown beside the real one in videos; ``goals[i]``
    the goal image it pursues in episode ``i`` (None: none), shown too; ``plan_seconds`` the wall time of
    each planning call; ``close`` frees what it holds (worker processes)."""
    predictions: list[np.ndarray | None]
    goals: list[np.ndarray | None]
    plan_seconds: list[float]

    def close(self) -> None: ...

    def reset(self, obs: Sequence[np.ndarray], demo: np.ndarray | None = None,
              seeds: Sequence[int] | None = None, goals: Sequence[np.ndarray | None] | None = None) -> None: ...

    def act(self, obs: Sequence[np.ndarray], active: Sequence[bool] | None = None) -> list[Any]: ...


class PolicyAgent:
    """The scripted expert or the random policy of ``envs.experts``, one per env (demos are ignored)."""

    def __init__(self, envs: Sequence[gym.Env], kind: str, noise: float = 0.0):
        self.policies = [make_policy(kind, env, noise=noise, seed=0) for env in envs]
        self.predictions: list[np.ndarray | None] = [None] * len(envs)
        self.goals: list[np.ndarray | None] = [None] * len(envs)
        self.plan_seconds: list[float] = []

    def reset(self, obs: Sequence[np.ndarray], demo: np.ndarray | None = None,
              seeds: Sequence[int] | None = None, goals: Sequence[np.ndarray | None] | None = None) -> None:
        for policy, seed in zip(self.policies, seeds if seeds is not None else [0] * len(obs)):
            policy.reset(seed)

    def act(self, obs: Sequence[np.ndarray], active: Sequence[bool] | None = None) -> list[Any]:
        active = active if active is not None else [True] * len(obs)
        return [p.act(o) if a else None for p, o, a in zip(self.policies, obs, active)]

    def close(self) -> None:
        pass
