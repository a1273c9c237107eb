"""A success classifier: one 64x64 frame -> the logit that the task has succeeded (with ``lookahead``
k > 0: that it will have succeeded k steps later, following the policy of its training data).

A *demo-conditioned* one (``conditioned``) also reads a goal frame, the last frame of a demo, and
scores "this frame shows the task that demo's end shows done": one model for every task, no goal image
of this episode and no per-task classifier (it sees both frames stacked as 6 input channels).

VP² plans RoboDesk tasks with such a classifier as its cost (``0.5 * mse + 10 * sum of logits``); here it
also rewards RL in imagination. A small CNN (4 stride-2 convs, GroupNorm, GELU, a linear head),
trained by ``worldmodel.train_classifier`` on episode datasets with labels from ``info["success"]``.
Saved as ``config.json`` + ``model.safetensors``; shipped ones load by name, several at once with
:func:`load_classifiers` (``push-red-k8+0.25*push-red``: names or folders joined by ``+``, each with an
optional weight).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn

from vidit.pretrained import Pretrained

SHIPPED = Path(__file__).parent / "classifiers"


@dataclass
class ClassifierConfig:
    frame_size: int = 64
    channels: tuple[int, ...] = (32, 64, 64, 128)
    env_id: str | None = None
    lookahead: int = 0  # trained on the label of k steps later: a graded "nearly there" for MPC costs
    conditioned: bool = False  # reads a demo's last frame beside each frame
    version: int = 1

    def __post_init__(self):
        self.channels = tuple(self.channels)
        if self.frame_size % 2 ** len(self.channels):
            raise ValueError(f"frame_size {self.frame_size} must be divisible by 2**{len(self.channels)}")


class SuccessClassifier(Pretrained, nn.Module):
    config_class, shipped, kind = ClassifierConfig, SHIPPED, "success classifier"

    def __init__(self, config: ClassifierConfig = ClassifierConfig()):
        super().__init__()
        self.config = config
        layers, ch = [], 6 if config.conditioned else 3
        for out in config.channels:
            layers += [nn.Conv2d(ch, out, 4, stride=2, padding=1), nn.GroupNorm(8, out), nn.GELU()]
            ch = out
        side = config.frame_size // 2 ** len(config.channels)
        self.net = nn.Sequential(*layers, nn.Flatten(), nn.Linear(ch * side * side, 1))

    def forward(self, frames: torch.Tensor, goal: torch.Tensor | None = None) -> torch.Tensor:
        """uint8 or float frames ``[..., H, W, 3]`` (and, conditioned, goal frames broadcastable to them)
        -> success logits ``[...]``."""
        size = self.config.frame_size
        if tuple(frames.shape[-3:]) != (size, size, 3):
            raise ValueError(f"frames have shape {tuple(frames.shape)}; expected [..., {size}, {size}, 3]")
        if (goal is None) == self.config.conditioned:
            raise ValueError("a demo-conditioned classifier needs the demo's goal frame" if goal is None
                             else "this classifier is not demo-conditioned: it takes no goal frame")
        lead = frames.shape[:-3]
        if goal is not None:
            frames = torch.cat([frames, goal.to(frames.dtype).expand_as(frames)], dim=-1)
        x = frames.reshape(-1, size, size, frames.shape[-1]).float().permute(0, 3, 1, 2) / 127.5 - 1
        return self.net(x).reshape(lead)

    @torch.no_grad()
    def logits(self, frames, goal=None, batch_size: int = 512) -> np.ndarray:
        """Logits of uint8 frames ``[..., H, W, 3]`` (numpy in, numpy out), in eval mode, on the model's device;
        ``goal`` (conditioned only): one uint8 frame ``[H, W, 3]`` shared by all."""
        was = self.training
        self.eval()
        device = self.net[0].weight.device
        flat = torch.as_tensor(np.asarray(frames)).reshape(-1, *np.shape(frames)[-3:])
        g = None if goal is None else torch.as_tensor(np.asarray(goal)).to(device)
        out = torch.cat([self(flat[i:i + batch_size].to(device), g).cpu()
                         for i in range(0, len(flat), batch_size)]) if len(flat) else torch.zeros(0)
        self.train(was)
        return out.reshape(np.shape(frames)[:-3]).numpy()


def load_classifiers(spec: str) -> list[SuccessClassifier]:
    """The classifiers named by ``spec``: terms ``[w*]name`` (a shipped name or a folder) joined by ``+``.

    A cost sums their logits; a weight ``w`` > 0 scales a term's logits, folded into its last layer."""
    models = []
    for term in spec.split("+"):
        weight, _, name = term.rpartition("*")
        try:
            w = float(weight or 1)
        except ValueError:
            w = float("nan")
        if not name or not np.isfinite(w) or w <= 0:
            raise ValueError(f"classifier term {term!r}: expected NAME or WEIGHT*NAME with a weight > 0")
        model = SuccessClassifier.from_pretrained(name)
        if w != 1:
            with torch.no_grad():
                for p in model.net[-1].parameters():
                    p.mul_(w)
        models.append(model)
    return models
