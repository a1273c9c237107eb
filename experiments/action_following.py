"""``action_following``: does an action-conditioned world model follow its actions? (push_red)

    python -m experiments.action_following --out results/action_following [--guidance 1 3] [--instances 10] [--context-frames 1]

From each benchmark instance's start, the real env and the world model both take each of four
constant pushes (+x, -x, +y, -y, full scale) for ``--steps`` steps. A prediction "follows" when its
last frame lies nearer (pixel MSE) to the real last frame of its own push than to those of the other
three: chance is 25%. Writes ``action_following.{md,csv,json}``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np
import torch

import envs
from experiments.tables import write_table
from vidit.cli import run
from worldmodel.sampling import SamplingConfig
from worldmodel.simulator import VideoSimulator

PUSHES = {"+x": 0, "-x": 0, "+y": 1, "-y": 1}


@dataclass
class ActionFollowingConfig:
    """Score how often world-model rollouts end nearer the real outcome of their own action."""
    out: Path = field(default=Path("results/action_following"), metadata={"help": "output folder"})
    model: str = field(default="robodesk-push-red", metadata={"help": "world model folder or shipped name"})
    guidance: tuple[float, ...] = field(default=(1.0, 3.0), metadata={"help": "classifier-free guidance values"})
    instances: int = field(default=10, metadata={"help": "benchmark instances 0..N-1"})
    steps: int = field(default=3, metadata={"help": "steps per push"})
    samples: int = field(default=4, metadata={"help": "sampled rollouts per push"})
    context_frames: int = field(default=2, metadata={
        "help": "copies of the start frame as context (2: MPC's default; 1: as --context-frames 0 at an episode's start)"})
    threads: Optional[int] = field(default=None, metadata={"help": "torch CPU threads"})

    def __post_init__(self):
        if self.context_frames < 1:
            raise ValueError(f"--context-frames must be >= 1, got {self.context_frames}")


def _push(name: str, steps: int) -> np.ndarray:
    a = np.zeros((steps, 5), np.float32)
    a[:, PUSHES[name]] = 1.0 if name[0] == "+" else -1.0
    return a


def main(cfg: ActionFollowingConfig) -> list[dict]:
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    sim = VideoSimulator.from_pretrained(cfg.model)
    env = envs.make("push_red")
    real, starts = {}, {}
    for i in range(cfg.instances):
        for name in PUSHES:
            obs, _ = env.reset(options={"instance": i})
            starts[i] = obs
            for a in _push(name, cfg.steps):
                last = env.step(a)[0]
            real[i, name] = last.astype(np.float32)
    env.close()
    rows = []
    for w in cfg.guidance:
        hits, total = 0, 0
        for i in range(cfg.instances):
            c = cfg.context_frames
            context, past = np.stack([starts[i]] * c), np.zeros((c - 1, 5), np.float32) if c > 1 else None
            for name in PUSHES:
                acts = np.repeat(_push(name, cfg.steps)[None], cfg.samples, 0)
                pred = sim.rollout(context, acts, SamplingConfig(guidance=w), seed=i, past_actions=past)[:, -1].astype(np.float32)
                dist = {other: ((pred - real[i, other]) ** 2).mean(axis=(1, 2, 3)) for other in PUSHES}
                nearest = np.array(list(PUSHES))[np.argmin(np.stack(list(dist.values())), axis=0)]
                hits += int((nearest == name).sum())
                total += len(nearest)
        rows.append({"guidance": w, "rollouts": total, "follows": round(hits / total, 3), "chance": 0.25})
        print(rows[-1])
    write_table(cfg.out, "action_following", rows, ["guidance", "rollouts", "follows", "chance"],
                {"config": {**cfg.__dict__, "out": str(cfg.out)}})
    return rows


def cli() -> None:
    run(main, ActionFollowingConfig)


if __name__ == "__main__":
    cli()
