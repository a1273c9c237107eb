"""Env actions as the float vectors the decoder embeds: continuous as is, discrete one-hot.

The encoding is fixed by the action space recorded in a dataset's ``meta/info.json`` (``box``,
``discrete`` or ``multidiscrete``) and saved with the world model, so a checkpoint knows what it
expects and rejects actions of another shape in one line.
"""
from __future__ import annotations

import numpy as np
import torch


class ActionEncoder:
    def __init__(self, space: dict | None):
        self.space = space
        kind = None if space is None else space["type"]
        if kind is None:
            self.raw_dim, self.dim = 0, 0
        elif kind == "box":
            self.raw_dim = self.dim = int(np.prod(space["shape"]))
        elif kind == "discrete":
            self.raw_dim, self.dim = 1, int(space["n"])
        elif kind == "multidiscrete":
            self.raw_dim, self.dim = len(space["nvec"]), int(sum(space["nvec"]))
        else:
            raise ValueError(f"unknown action space type {kind!r}; expected box, discrete or multidiscrete")

    def describe(self) -> str:
        if self.space is None:
            return "no actions"
        if self.space["type"] == "box":
            return f"float actions of shape ({self.raw_dim},)"
        if self.space["type"] == "discrete":
            return f"one int action in [0, {self.space['n']})"
        return f"{self.raw_dim} ints with sizes {self.space['nvec']}"

    def encode(self, actions) -> torch.Tensor:
        """Raw actions ``[..., raw_dim]`` -> ``[..., dim]``. Discrete actions may omit the last axis
        (``[N]`` or ``[N, H]`` ints); a 1-d input is always a batch of them."""
        a = torch.as_tensor(np.asarray(actions), dtype=torch.float32)
        kind = None if self.space is None else self.space["type"]
        if kind == "discrete" and (a.ndim <= 1 or a.shape[-1] != 1):
            a = a.unsqueeze(-1)
        if self.dim == 0 or a.shape[-1] != self.raw_dim:
            raise ValueError(f"actions have shape {tuple(a.shape)}; this model expects {self.describe()} per step")
        if kind == "box":
            return a
        sizes = [self.space["n"]] if kind == "discrete" else self.space["nvec"]
        idx = a.round().long()
        if (idx < 0).any() or any((idx[..., i] >= n).any() for i, n in enumerate(sizes)):
            raise ValueError(f"action ids out of range; this model expects {self.describe()}")
        return torch.cat([torch.nn.functional.one_hot(idx[..., i], n).float() for i, n in enumerate(sizes)], dim=-1)
