"""The inverse-dynamics model: a window of consecutive frames -> one action per transition.

As in VPT's IDM, it sees the whole window (non-causal): a 2D-conv stem embeds each transition
(frame t and the change to frame t+1), then a small transformer attends across the window's
transitions in both directions, and a head built from the env's action space reads one action
per transition. Heads: ``box`` -> a diagonal Gaussian (mean, log-std); ``discrete`` and
``multidiscrete`` (MineRL's flat vector) -> categorical logits per component. Every head also
scores its own prediction (the log-likelihood of the action it returns), which the imitation
agent uses to pick among imagined futures.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from vidit import pretrained
from vidit.pretrained import Pretrained

VERSION = 1
SHIPPED = Path(__file__).parent / "models"


@dataclass
class IDMConfig:
    action_space: dict  # as recorded in an episode dataset's meta/info.json
    frame_size: int = 64
    window: int = 8  # most frames per window (transitions = window - 1)
    channels: tuple[int, ...] = (32, 64, 128)
    dim: int = 128
    n_layer: int = 2
    n_head: int = 4
    env_id: str | None = None
    version: int = VERSION

    def __post_init__(self):
        self.channels = tuple(self.channels)
        if self.frame_size % 2 ** len(self.channels):
            raise ValueError(f"frame_size {self.frame_size} must be divisible by 2**{len(self.channels)}")
        if self.window < 2:
            raise ValueError(f"window must hold >= 2 frames, got {self.window}")
        ActionHead.sizes(self.action_space)  # validates the space


class ActionHead(nn.Module):
    """Per-transition outputs for one action space: Gaussian for ``box``, categorical otherwise."""

    def __init__(self, space: dict, dim: int):
        super().__init__()
        self.space, self.kind, self.sizes_ = space, space["type"], self.sizes(space)
        if self.kind == "box":
            self.low = nn.Buffer(torch.tensor(space["low"], dtype=torch.float32).reshape(-1), persistent=False)
            self.high = nn.Buffer(torch.tensor(space["high"], dtype=torch.float32).reshape(-1), persistent=False)
            self.proj = nn.Linear(dim, 2 * self.sizes_[0])
        else:
            self.proj = nn.Linear(dim, sum(self.sizes_))

    @staticmethod
    def sizes(space: dict) -> list[int]:
        kind = space.get("type")
        if kind == "box":
            return [int(np.prod(space["shape"]))]
        if kind == "discrete":
            return [int(space["n"])]
        if kind == "multidiscrete":
            return [int(n) for n in space["nvec"]]
        raise ValueError(f"unknown action space type {kind!r}; expected box, discrete or multidiscrete")

    @property
    def action_dim(self) -> int:
        """Length of one raw action vector (as stored in datasets)."""
        return self.sizes_[0] if self.kind == "box" else len(self.sizes_)

    def _split(self, out: torch.Tensor):
        if self.kind == "box":
            mean, log_std = out.chunk(2, dim=-1)
            return mean, log_std.clamp(-7, 2)
        return out.split(self.sizes_, dim=-1)

    def _scale(self, a: torch.Tensor) -> torch.Tensor:
        """Box actions to [-1, 1] (the Gaussian lives there)."""
        return (2 * (a - self.low) / (self.high - self.low) - 1).clamp(-1, 1)

    def loss(self, out: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """Negative log-likelihood per transition, ``[...]``, of raw ``actions [..., action_dim]``."""
        if self.kind == "box":
            mean, log_std = self._split(out)
            z = (self._scale(actions) - mean) * torch.exp(-log_std)
            return (0.5 * z ** 2 + log_std + 0.5 * math.log(2 * math.pi)).sum(-1)
        ids = actions.round().long()
        nll = sum(F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), ids[..., i].reshape(-1), reduction="none")
                  for i, logits in enumerate(self._split(out)))
        return nll.view(ids.shape[:-1])

    def predict(self, out: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(raw actions ``[..., action_dim]``, their log-likelihood ``[...]``): the mode of each head."""
        if self.kind == "box":
            mean, log_std = self._split(out)
            mean = mean.clamp(-1, 1)
            action = self.low + (mean + 1) * (self.high - self.low) / 2
            return action, -(log_std + 0.5 * math.log(2 * math.pi)).sum(-1)
        logp = [F.log_softmax(logits.float(), dim=-1) for logits in self._split(out)]
        best = [lp.max(dim=-1) for lp in logp]
        return torch.stack([b.indices.float() for b in best], dim=-1), sum(b.values for b in best)


class InverseDynamics(Pretrained, nn.Module):
    config_class, kind = IDMConfig, "IDM"
    shipped = SHIPPED

    def __init__(self, config: IDMConfig):
        super().__init__()
        self.config = c = config
        layers, ch = [], 6  # frame t and (frame t+1 - frame t)
        for out in c.channels:
            layers += [nn.Conv2d(ch, out, 4, stride=2, padding=1), nn.GroupNorm(8, out), nn.GELU()]
            ch = out
        self.stem = nn.Sequential(*layers)
        side = c.frame_size // 2 ** len(c.channels)
        self.embed = nn.Linear(ch * side * side, c.dim)
        self.pos = nn.Parameter(torch.zeros(c.window - 1, c.dim))
        block = nn.TransformerEncoderLayer(c.dim, c.n_head, 4 * c.dim, dropout=0.0, activation="gelu",
                                           batch_first=True, norm_first=True)
        self.temporal = nn.TransformerEncoder(block, c.n_layer, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(c.dim)
        self.head = ActionHead(c.action_space, c.dim)

    @property
    def action_dim(self) -> int:
        return self.head.action_dim

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        """uint8 or float frames ``[B, W, H, W, 3]`` (2 <= W <= window) -> head outputs ``[B, W - 1, out]``."""
        b, w = frames.shape[:2]
        size = self.config.frame_size
        if not 2 <= w <= self.config.window or tuple(frames.shape[2:]) != (size, size, 3):
            raise ValueError(f"frames have shape {tuple(frames.shape)}; expected [B, W, {size}, {size}, 3] "
                             f"with 2 <= W <= {self.config.window}")
        x = frames.float().permute(0, 1, 4, 2, 3) / 127.5 - 1
        x = torch.cat([x[:, :-1], x[:, 1:] - x[:, :-1]], dim=2).flatten(0, 1)
        h = self.embed(self.stem(x).flatten(1)).view(b, w - 1, -1) + self.pos[:w - 1]
        return self.head.proj(self.norm(self.temporal(h)))

    def loss(self, frames: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        return self.head.loss(self(frames), actions).mean()

    @torch.no_grad()
    def predict(self, frames) -> tuple[np.ndarray, np.ndarray]:
        """Actions ``[B, W - 1, action_dim]`` and their log-likelihood ``[B, W - 1]`` for uint8 frames."""
        was = self.training
        self.eval()
        device = next(self.parameters()).device
        action, score = self.head.predict(self(torch.as_tensor(np.asarray(frames)).to(device)))
        self.train(was)
        return action.cpu().numpy(), score.cpu().numpy()

    def label(self, video: np.ndarray) -> np.ndarray:
        """Actions ``[T - 1, action_dim]`` of every transition of a uint8 video ``[T, H, W, 3]`` (T >= 2), read
        window by window (consecutive windows share a frame; the last one ends at the video's end)."""
        w, t = self.config.window, len(video)
        if t < 2:
            raise ValueError(f"a video of {t} frame(s) has no transition to label")
        starts = list(range(0, t - 1, w - 1))
        out = np.zeros((t - 1, self.action_dim), np.float32)
        for s in starts:
            s = min(s, max(0, t - w))
            out[s:s + w - 1] = self.predict(video[None, s:s + w])[0][0]
        return out

    # -- checkpoints (save_pretrained / from_pretrained: vidit.pretrained) ---------------------------
    @classmethod
    def from_pretrained(cls, name_or_dir: str | Path, action_space: dict | None = None) -> "InverseDynamics":
        """Load a folder (or a shipped name: ``push-red``, ``crafter``); ``action_space`` must match if given."""
        model = super().from_pretrained(name_or_dir)
        if action_space is not None and _space_key(action_space) != _space_key(model.config.action_space):
            raise ValueError(f"IDM {name_or_dir} is for action space {_space_key(model.config.action_space)}, "
                             f"not {_space_key(action_space)}")
        return model


def _space_key(space: dict) -> str:
    kind = space.get("type")
    detail = {"box": space.get("shape"), "discrete": space.get("n"), "multidiscrete": space.get("nvec")}.get(kind)
    return f"{kind}{list(np.atleast_1d(detail)) if detail is not None else ''}"


def resolve(name_or_dir: str | Path) -> Path:
    """An IDM folder from a path or a shipped name."""
    return pretrained.resolve(name_or_dir, SHIPPED, "IDM")
