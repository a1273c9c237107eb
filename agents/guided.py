"""MPC from a demo, started from the imitation agent's plan (``--agent guided``).

Each time the imitation agent plans (every ``replan_every`` steps: the world model imagines the query
after the demo, the cost picks a future, the IDM reads its actions), its whole plan becomes the MPC
planner's mean for that episode; every step MPPI (or CEM) samples around the mean, scores the samples'
action-conditioned rollouts with the same demo-conditioned cost, and executes the first action of the
result. The imitation agent says where to go (read from the demo); the rollouts check what the actions
really do from the episode seen so far. Neither reads the env's task.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from agents.imitation import ImitationAgent
from agents.mpc import MPCAgent


def fit_horizon(plan: np.ndarray, horizon: int) -> np.ndarray:
    """``plan [T, A]`` cut or padded (its last action repeated) to ``[horizon, A]``."""
    plan = np.asarray(plan, np.float64)
    return np.concatenate([plan, np.repeat(plan[-1:], max(0, horizon - len(plan)), 0)])[:horizon]


class GuidedAgent:
    def __init__(self, proposer: ImitationAgent, mpc: MPCAgent):
        self.proposer, self.mpc = proposer, mpc
        self.plan_seconds: list[float] = []  # per step: the imitation round (when it planned) + the MPC call

    @property
    def predictions(self) -> list[np.ndarray | None]:
        return self.mpc.predictions

    @property
    def goals(self) -> list[np.ndarray | None]:
        return self.mpc.goals

    def reset(self, obs: Sequence[np.ndarray], demo: np.ndarray | None = None, seeds: Sequence[int] | None = None,
              goals: Sequence[np.ndarray | None] | None = None) -> None:
        if demo is None:
            raise ValueError("--agent guided starts MPC from the imitation agent's plan for a demo: pass --demo")
        self.proposer.reset(obs, demo, seeds, goals)
        self.mpc.reset(obs, demo, seeds, goals)
        self.used: list[np.ndarray | None] = [None] * len(obs)

    def act(self, obs: Sequence[np.ndarray], active: Sequence[bool] | None = None) -> list[Any]:
        rounds, calls = len(self.proposer.plan_seconds), len(self.mpc.plan_seconds)
        self.proposer.act(obs, active)  # keeps its query and plans anew where its plan ran out
        for i, plan in enumerate(self.proposer.proposals):
            if plan is not None and plan is not self.used[i]:
                planner = self.mpc.planners[i]
                planner.mean = np.clip(fit_horizon(plan, planner.cfg.horizon), planner.low, planner.high)
                self.used[i] = plan
        actions = self.mpc.act(obs, active)
        self.plan_seconds.append(sum(self.proposer.plan_seconds[rounds:]) + sum(self.mpc.plan_seconds[calls:]))
        return actions

    def close(self) -> None:
        self.mpc.close()
