"""Scripted RoboDesk button expert: rise above the desk, hover over the task's button, press down, hold it."""
from __future__ import annotations

import numpy as np

from envs.robodesk import RoboDeskEnv

HOVER = np.array([0.0, 0.0, 0.10])   # waypoint above the button (m)
PRESS = np.array([0.0, 0.0, 0.04])   # fingertips reach ~5 cm below the end-effector site: a firm, held press
RISE = 0.02                          # m above the button before moving sideways
ALIGN_XY = 0.04                      # m: close enough above the button to descend
STEP_SCALE = 0.06                    # m per control step at |action| = 1 (measured, 50 repeats)
LOW_RADIUS = 0.05                    # near_miss: the low point's largest sideways offset from the button (m)
LOW_HEIGHT = (0.045, 0.075)          # near_miss: the low point's height above the button (m)


class ButtonExpert:
    """Privileged expert reading the end-effector and button positions; optional Gaussian action noise
    (VP² collects at noise 0.1 and 0.2), clipped to [-1, 1]. It presses ``task``'s button (default: the
    env's task), so one env can record every task.

    ``near_miss``: each episode skips the hover and heads straight for one low point near the button (up to
    ``LOW_RADIUS`` off, ``LOW_HEIGHT`` above) with the fingers at a random opening. Such approaches often
    jam beside the button without pressing it, as MPC's failures do; the plain expert never shows them."""

    def __init__(self, env: RoboDeskEnv, noise: float = 0.0, seed: int | None = None, near_miss: bool = False,
                 task: str | None = None):
        self.env, self.noise, self.near_miss = env, noise, near_miss
        self.task = task or env.task
        if self.task is None:
            raise ValueError("the button expert needs a task: the env has none, so pass task=")
        self.reset(seed)

    def reset(self, seed: int | None = None) -> None:
        self.rng = np.random.default_rng(seed)
        self.hover, self.press, self.fingers = HOVER, PRESS, -1.0  # fingers closed: one narrow tip to press with
        if self.near_miss:
            radius, angle = self.rng.uniform(0, LOW_RADIUS), self.rng.uniform(0, 2 * np.pi)
            self.hover = self.press = np.array([radius * np.cos(angle), radius * np.sin(angle),
                                                self.rng.uniform(*LOW_HEIGHT)])
            self.fingers = self.rng.uniform(-1.0, 1.0)

    def act(self, obs=None) -> np.ndarray:
        ee, button = self.env.end_effector, self.env.button_position(self.task)
        aligned = np.linalg.norm((ee - button - self.press)[:2]) < ALIGN_XY
        target = button + (self.press if aligned or self.env.button_down(self.task) else self.hover)
        if not aligned and ee[2] < button[2] + RISE:  # under the desk's edge: straight up first
            target = np.array([ee[0], ee[1], button[2] + self.hover[2]])
        action = np.zeros(5, np.float32)
        action[:3] = (target - ee) / STEP_SCALE
        action[4] = self.fingers
        if self.noise > 0:
            action[:3] += self.rng.normal(0.0, self.noise, 3)
        return np.clip(action, -1.0, 1.0).astype(np.float32)
