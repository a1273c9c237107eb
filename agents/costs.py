"""Costs of predicted videos for MPC (lower is better), VP²'s two kinds.

- ``mse``: squared pixel error to a goal image (pixels in [0, 1]), summed over the pixels of each frame
  and over the predicted frames. Summed, not averaged: MPPI's gamma 0.05 expects costs whose differences
  between samples are tens of units; a per-pixel mean (differences ~0.01) would weight all samples alike.
- ``classifier``: VP²'s RoboDesk cost, ``0.5 * mse + 10 * sum of logits`` where the logits are those
  of failure, i.e. ``-10 *`` the success classifier's logits (a likelier success costs less).
  Without a goal image the mse term is left out. With several classifiers (e.g. success 8 steps ahead
  and success now) their logits add up. A demo-conditioned classifier reads the goal image beside each
  frame (from a demo: the demo's last frame), so one cost serves every task the demo may show.

"""
from __future__ import annotations

from typing import Literal, Sequence

import numpy as np

from worldmodel.classifier import SuccessClassifier

CostKind = Literal["mse", "classifier"]


class VideoCost:
    def __init__(self, kind: CostKind, frame_shape: tuple[int, ...],
                 classifier: SuccessClassifier | Sequence[SuccessClassifier] = (),
                 mse_weight: float = 0.5, logit_weight: float = 10.0):
        classifiers = [classifier] if isinstance(classifier, SuccessClassifier) else list(classifier)
        if kind == "classifier" and not classifiers:
            raise ValueError("the classifier cost needs a success classifier")
        self.kind, self.frame_shape, self.classifiers = kind, tuple(frame_shape), classifiers
        self.mse_weight, self.logit_weight = mse_weight, logit_weight

    def check_goal(self, goal: np.ndarray | None) -> np.ndarray | None:
        """The goal image as an array, uint8 of ``frame_shape``; None: no goal (only the unconditioned
        classifier cost works then). Raises a one-line ValueError for a goal this cost cannot use."""
        if goal is not None:
            goal = np.asarray(goal)
            if goal.shape != self.frame_shape:
                raise ValueError(f"the goal image has shape {goal.shape}; expected {self.frame_shape} (uint8 HxWx3)")
        elif self.kind == "mse":
            raise ValueError("the mse cost needs a goal image (pass --goal, a push_red instance or a --demo)")
        elif self.conditioned:
            raise ValueError("a demo-conditioned classifier needs a goal frame (pass --demo or --goal)")
        return goal

    @property
    def conditioned(self) -> bool:
        return self.kind == "classifier" and any(c.config.conditioned for c in self.classifiers)

    def __call__(self, frames: np.ndarray, goal: np.ndarray | None = None) -> np.ndarray:
        """Costs ``[N]`` of predicted videos uint8 ``[N, H, *frame_shape]`` against ``goal`` (see :meth:`check_goal`)."""
        goal = self.check_goal(goal)
        n = len(frames)
        cost = np.zeros(n)
        if goal is not None:
            diff = frames.astype(np.float32) / 255 - goal.astype(np.float32) / 255
            mse = (diff ** 2).reshape(n, -1).sum(1)
            cost += mse if self.kind == "mse" else self.mse_weight * mse
        if self.kind == "classifier":
            cost -= self.logit_weight * sum(c.logits(frames, goal if c.config.conditioned else None).sum(1)
                                            for c in self.classifiers)
        return cost
