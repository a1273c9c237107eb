"""VP²'s simulator oracle: the real env as the MPC predictor.

Copies of the env are restored to the episode's current simulator state (``get_state`` /
``set_state``) and stepped through each sampled action sequence; the rendered observations are the
"predicted" frames. The samples are split over worker processes, each holding one env copy
(``workers=0``: one copy in this process).
"""
from __future__ import annotations

import multiprocessing as mp
from typing import Sequence

import numpy as np

import envs

_copy = None  # the worker process's env copy


def _init(env_id: str) -> None:
    global _copy
    _copy = envs.make(env_id).unwrapped
    _copy.reset(seed=0)


def _simulate(job: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """Frames ``[n, H, h, w, 3]`` of the copy replaying each sequence in ``actions [n, H, A]`` from ``state``."""
    state, actions = job
    out = []
    for sequence in actions:
        _copy.set_state(state, render=False)
        out.append(np.stack([_copy.step(a)[0] for a in sequence]))
    return np.stack(out)


class EnvOracle:
    """Predicts with copies of the live episodes' envs (which must offer ``get_state``)."""

    def __init__(self, live: Sequence, workers: int = 2):
        self.live = list(live)
        env_id = self.live[0].spec.id
        if not hasattr(self.live[0].unwrapped, "get_state"):
            raise ValueError(f"the simulator oracle needs an env with get_state/set_state; {env_id} has none")
        self.pool = mp.get_context("spawn").Pool(workers, _init, (env_id,)) if workers else None
        if self.pool is None:
            _init(env_id)
        self.workers = max(workers, 1)

    def __call__(self, row, context, past_actions, actions, seed):
        state = self.live[row].unwrapped.get_state()
        jobs = [(state, chunk) for chunk in np.array_split(np.asarray(actions), self.workers) if len(chunk)]
        parts = self.pool.map(_simulate, jobs) if self.pool else [_simulate(j) for j in jobs]
        return np.concatenate(parts)

    def close(self) -> None:
        if self.pool is not None:
            self.pool.terminate()
            self.pool = None
