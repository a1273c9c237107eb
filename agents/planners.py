"""Sampling-based trajectory optimisers for MPC: MPPI and CEM with VP²'s defaults.

Both optimise an action sequence ``[H, A]`` in a box against a batched cost ``cost_fn(actions [N, H, A])
-> [N]`` (lower is better), and keep their mean between calls: ``plan`` returns the first action, and the
mean is shifted by one step to warm-start the next call (receding horizon).

- MPPI (VP²: 200 samples, horizon 10, 1 round per step): correlated noise
  ``n_t = beta * n_{t-1} + (1 - beta) * N(0, std)`` with beta 0.5 and std (.5, .5, .5, .1, .1), samples
  clipped to the box, weights ``exp(gamma * (R - max R))`` with ``R = -cost`` and gamma 0.05.
- CEM: Gaussian samples around the mean, 3 rounds, the best 5% (elites) refit mean and std.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Optional, Sequence

import numpy as np

CostFn = Callable[[np.ndarray], np.ndarray]
VP2_STD = (0.5, 0.5, 0.5, 0.1, 0.1)


@dataclass
class PlannerConfig:
    planner: str = field(default="mppi", metadata={"help": "mppi or cem", "choices": ["mppi", "cem"]})
    samples: int = field(default=200, metadata={"help": "action sequences per round"})
    horizon: int = field(default=10, metadata={"help": "planned steps"})
    rounds: Optional[int] = field(default=None, metadata={
        "help": "optimisation rounds per step (none: VP²'s, MPPI 1 and CEM 3)"})
    gamma: float = field(default=0.05, metadata={"help": "MPPI: weights exp(gamma * (R - max R))"})
    beta: float = field(default=0.5, metadata={"help": "MPPI: noise correlation across time"})
    std: tuple[float, ...] = field(default=VP2_STD, metadata={
        "help": "initial noise std per action component (one value: all components; 0 holds a component at "
                "its --init-mean)"})
    init_mean: tuple[float, ...] = field(default=(0.0,), metadata={
        "help": "the sequence's mean at an episode's start, per action component (one value: all components; "
                "VP²: 0)"})
    elite_frac: float = field(default=0.05, metadata={"help": "CEM: fraction of samples refitting the mean"})

    def __post_init__(self):
        if self.planner not in ("mppi", "cem"):
            raise ValueError(f"--planner must be mppi or cem, got {self.planner!r}")
        if self.rounds is None:
            self.rounds = 1 if self.planner == "mppi" else 3
        for name in ("samples", "horizon", "rounds"):
            if getattr(self, name) < 1:
                raise ValueError(f"--{name} must be >= 1, got {getattr(self, name)}")
        if not 0 <= self.beta < 1 or self.gamma <= 0 or not 0 < self.elite_frac <= 1 or min(self.std) < 0 \
                or max(self.std) <= 0:
            raise ValueError("need 0 <= --beta < 1, --gamma > 0, 0 < --elite-frac <= 1, --std >= 0 and one --std > 0")


class Planner:
    """MPPI or CEM over actions in ``[low, high]^A``; seeded, so a run is reproducible."""

    def __init__(self, cfg: PlannerConfig, low: Sequence[float], high: Sequence[float], seed: int = 0):
        self.cfg = cfg
        self.low, self.high = np.asarray(low, np.float64), np.asarray(high, np.float64)
        a = len(self.low)
        std = np.asarray(cfg.std, np.float64)
        if std.size not in (1, a):
            raise ValueError(f"--std has {std.size} values; the action has {a} components")
        self.std0 = np.broadcast_to(std, (a,)).copy()
        mean = np.asarray(cfg.init_mean, np.float64)
        if mean.size not in (1, a):
            raise ValueError(f"--init-mean has {mean.size} values; the action has {a} components")
        self.mean0 = np.clip(np.broadcast_to(mean, (a,)), self.low, self.high)
        self.rng = np.random.default_rng(seed)
        self.reset()

    def reset(self, seed: int | None = None) -> None:
        if seed is not None:
            self.rng = np.random.default_rng(seed)
        self.mean = np.tile(self.mean0, (self.cfg.horizon, 1))

    def plan(self, cost_fn: CostFn) -> np.ndarray:
        """Optimise the sequence; return its first action and shift the mean for the next call."""
        c = self.cfg
        std = np.broadcast_to(self.std0, self.mean.shape).copy()
        for _ in range(c.rounds):
            samples = self.sample(std)
            costs = np.asarray(cost_fn(samples.astype(np.float32)), np.float64)
            if costs.shape != (len(samples),):
                raise ValueError(f"the cost function returned shape {costs.shape}; expected ({len(samples)},)")
            if c.planner == "mppi":
                rewards = -costs
                w = np.exp(c.gamma * (rewards - rewards.max()))
                self.mean = (w[:, None, None] * samples).sum(0) / w.sum()
            else:
                elites = samples[np.argsort(costs)[:max(2, int(round(c.elite_frac * len(samples))))]]
                self.mean, std = elites.mean(0), np.where(self.std0 > 0, elites.std(0) + 1e-6, 0.0)
        first = self.mean[0].copy()
        self.mean = np.concatenate([self.mean[1:], self.mean[-1:]])
        return first

    def sample(self, std: np.ndarray | None = None) -> np.ndarray:
        """``samples`` sequences ``[N, H, A]`` around the mean (noise std: the configured one by default)."""
        c = self.cfg
        std = self.std0 if std is None else std
        eps = self.rng.standard_normal((c.samples, *self.mean.shape)) * std
        if c.planner == "mppi":
            noise, prev = np.empty_like(eps), np.zeros_like(eps[:, 0])
            for t in range(c.horizon):  # n_t = beta * n_{t-1} + (1 - beta) * eps_t, n_{-1} = 0
                noise[:, t] = prev = c.beta * prev + (1 - c.beta) * eps[:, t]
            eps = noise
        return np.clip(self.mean + eps, self.low, self.high)
