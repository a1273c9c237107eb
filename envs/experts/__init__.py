"""Scripted experts (privileged: they read the simulator's state) and the random policy, per env.

A policy is made for one env instance: ``policy = make_policy("expert", env, noise=0.1, seed=0)``;
call ``policy.reset(seed)`` after each ``env.reset`` and ``policy.act(obs)`` for each action.
"""
from __future__ import annotations

from typing import Any, Protocol

import gymnasium as gym
import numpy as np

from vidit.cli import UsageError

POLICIES = ("expert", "near_miss", "random", "walk_left", "walk_right", "walk_up", "walk_down")


class Policy(Protocol):
    def reset(self, seed: int | None = None) -> None: ...

    def act(self, obs: Any) -> Any: ...


class RandomPolicy:
    """Uniform samples from the env's action space, seeded."""

    def __init__(self, env: gym.Env, seed: int | None = None):
        self.space = env.action_space
        self.reset(seed)

    def reset(self, seed: int | None = None) -> None:
        self.space.seed(None if seed is None else int(np.random.SeedSequence(seed).generate_state(1)[0]))

    def act(self, obs: Any) -> Any:
        return self.space.sample()


def make_policy(name: str, env: gym.Env, noise: float = 0.0, seed: int | None = None) -> Policy:
    """``"random"``, the scripted ``"expert"`` of ``env``'s task, (RoboDesk) its ``"near_miss"`` variant, or
    (Crafter) ``"walk_<direction>"``, with optional action noise."""
    if name == "random":
        return RandomPolicy(env, seed)
    if name not in POLICIES:
        raise UsageError(f"unknown policy {name!r}; known: {', '.join(POLICIES)}")
    base = env.unwrapped
    kind = type(base).__name__
    if name.startswith("walk_"):
        if kind != "CrafterEnv":
            raise UsageError(f"policy {name} is for Crafter, not {env.spec.id if env.spec else kind}")
        from envs.experts.crafter import WalkPolicy
        return WalkPolicy(base, name.removeprefix("walk_"), noise=noise, seed=seed)
    desk = kind in ("PushRedEnv", "RoboDeskEnv")
    if name == "near_miss" and not desk:
        raise UsageError(f"policy near_miss is for RoboDesk, not {env.spec.id if env.spec else kind}")
    if desk:
        if base.task is None:
            raise UsageError("the RoboDesk expert presses the env's task: give the env a task (e.g. --task push_green)")
        from envs.experts.robodesk import ButtonExpert
        return ButtonExpert(base, noise=noise, seed=seed, near_miss=name == "near_miss")
    if kind == "CrafterEnv":
        if base.task is None:
            raise UsageError("the Crafter expert does the env's task: give the env a task (e.g. --task drink_water)")
        from envs.experts.crafter import CrafterExpert
        return CrafterExpert(base, noise=noise, seed=seed)
    raise UsageError(f"no scripted expert for {env.spec.id if env.spec else kind}; use --policy random")
