"""The demo's actions as a prior over plans: the IDM reads the demo's actions, their frequencies score a plan.

Discrete and multidiscrete actions: each component's frequencies over the demo's transitions, add-one
smoothed; box actions: a diagonal Gaussian fitted to them (its std at least a tenth of each dimension's
range). A plan scores the mean log-probability of its actions. The imitation agent's
``pick="demo-actions"`` keeps the imagined future whose IDM-read actions the demo makes likeliest: a walk
demo's moves, say, pick the futures that walk that way. :class:`DemoActionAgent` (``run_agent --agent
demo-actions``) is its control without a world model: it draws every action from the demo's frequencies.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from idm.model import ActionHead, InverseDynamics


def env_action(action: np.ndarray, space: dict) -> Any:
    """A raw action vector (as datasets store it and the IDM reads it) as the env takes it."""
    if space["type"] == "discrete":
        return int(action[0])
    if space["type"] == "multidiscrete":
        return action.astype(np.int64)
    return action.astype(np.float32)


class ActionPrior:
    def __init__(self, space: dict, actions: np.ndarray):
        """``actions [N, action_dim]``: raw actions (as the IDM returns them) of the demo's transitions."""
        actions = np.asarray(actions, np.float64).reshape(len(actions), -1)
        if not len(actions):
            raise ValueError("an action prior needs at least one action")
        self.space, self.kind = space, space["type"]
        if self.kind == "box":
            self.low, self.high = (np.asarray(space[k], np.float64).reshape(-1) for k in ("low", "high"))
            self.mean = actions.mean(0)
            self.std = np.maximum(actions.std(0), (self.high - self.low) / 10)
        else:
            counts = [np.bincount(actions[:, i].astype(int), minlength=n) for i, n in enumerate(ActionHead.sizes(space))]
            self.freq = [c / len(actions) for c in counts]
            self.log_freq = [np.log((c + 1) / (len(actions) + len(c))) for c in counts]

    @classmethod
    def from_demo(cls, idm: InverseDynamics, demo: np.ndarray) -> "ActionPrior":
        return cls(idm.config.action_space, idm.label(demo))

    def log_prob(self, actions: np.ndarray) -> np.ndarray:
        """Log-probability ``[...]`` of each raw action ``[..., action_dim]``."""
        actions = np.asarray(actions, np.float64)
        if self.kind == "box":
            z = (actions - self.mean) / self.std
            return -(0.5 * z ** 2 + np.log(self.std) + 0.5 * np.log(2 * np.pi)).sum(-1)
        return sum(lf[actions[..., i].astype(int)] for i, lf in enumerate(self.log_freq))

    def sample(self, rng: np.random.Generator) -> np.ndarray:
        """One raw action: each component drawn from the demo's own frequencies (unsmoothed), or the Gaussian."""
        if self.kind == "box":
            return np.clip(rng.normal(self.mean, self.std), self.low, self.high)
        return np.array([rng.choice(len(f), p=f) for f in self.freq], np.float64)


class DemoActionAgent:
    """A control without a world model: each step's action is drawn from the demo's action frequencies, as
    the IDM reads them off the demo (one rng per episode, seeded by its seed)."""

    def __init__(self, idm: InverseDynamics, n_envs: int):
        self.idm = idm
        self.predictions: list[np.ndarray | None] = [None] * n_envs
        self.goals: list[np.ndarray | None] = [None] * n_envs
        self.plan_seconds: list[float] = []

    def reset(self, obs: Sequence[np.ndarray], demo: np.ndarray | None = None,
              seeds: Sequence[int] | None = None, goals: Sequence[np.ndarray | None] | None = None) -> None:
        if demo is None:
            raise ValueError("--agent demo-actions draws the demo's actions: pass --demo")
        self.prior = ActionPrior.from_demo(self.idm, demo)
        self.rngs = [np.random.default_rng(s) for s in (seeds if seeds is not None else [0] * len(obs))]

    def act(self, obs: Sequence[np.ndarray], active: Sequence[bool] | None = None) -> list[Any]:
        active = active if active is not None else [True] * len(obs)
        return [env_action(self.prior.sample(r), self.prior.space) if a else None for r, a in zip(self.rngs, active)]

    def close(self) -> None:
        pass
