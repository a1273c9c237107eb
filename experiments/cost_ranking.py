"""``cost_ranking``: do MPC's costs rank sampled futures by real progress to the button? (push_red)

    python -m experiments.cost_ranking --out results/cost_ranking [--instances 8] [--samples 32] [--horizon 4]

From each benchmark instance's start, MPPI's first round of samples (zero mean, VP²'s correlated noise,
times each of ``--std-scales``) is played in the real env, which gives every sample's real frames and
its progress: how many cm the end effector came nearer the red button. The world model predicts the
same samples from the start frame. Each cost (``mse`` and ``classifier``,
:class:`agents.costs.VideoCost`) then scores the real and the predicted frames, and the table says how
well it ranks: Spearman's rho between cost and remaining distance (1: perfect, 0: chance), the mean
progress of the 4 samples it likes best beside the mean of all and of the 4 truly best, and the cosine
between the first action of MPPI's weighted mean (``--gamma``) and the direction to the button (what
the planner would do). Writes ``cost_ranking.{md,csv,json,png}``.
"""
from __future__ import annotations

import multiprocessing as mp
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np
import torch

import envs
from agents.costs import VideoCost
from agents.planners import Planner, PlannerConfig
from experiments.tables import figure, write_table
from vidit.cli import run
from worldmodel.classifier import load_classifiers
from worldmodel.sampling import SamplingConfig
from worldmodel.precision import Precision, resolve_dtype
from worldmodel.simulator import VideoSimulator

TOP = 4  # samples MPPI's sharp weights mostly follow


@dataclass
class CostRankingConfig:
    """Score how well MPC costs, on real and on predicted frames, rank samples by real progress."""
    out: Path = field(default=Path("results/cost_ranking"), metadata={"help": "output folder"})
    model: str = field(default="robodesk-push-red", metadata={"help": "world model folder or shipped name"})
    classifier: str = field(default="push-red", metadata={
        "help": "success classifier folder or shipped name (several joined by +: their logits add up; "
                "W*NAME weighs one)"})
    instances: int = field(default=8, metadata={"help": "benchmark instances 0..N-1"})
    samples: int = field(default=32, metadata={"help": "sampled action sequences per instance"})
    horizon: int = field(default=4, metadata={"help": "steps per sequence"})
    std_scales: tuple[float, ...] = field(default=(1.0, 2.0), metadata={
        "help": "multipliers of VP²'s noise std (.5, .5, .5, .1, .1)"})
    mse_weight: float = field(default=0.5, metadata={"help": "classifier cost: weight of the goal MSE"})
    gamma: float = field(default=0.05, metadata={"help": "MPPI weights exp(-gamma * (cost - min cost))"})
    temperature: float = field(default=1.0, metadata={"help": "world-model sampling temperature"})
    workers: int = field(default=2, metadata={"help": "processes playing the samples in the real env"})
    precision: Precision = field(default="float32", metadata={
        "help": "world-model compute (float32, bfloat16, auto): the quality check of the bfloat16 fast path"})
    threads: Optional[int] = field(default=None, metadata={"help": "torch CPU threads"})

    def __post_init__(self):
        if not 1 <= self.instances <= 30 or self.samples < 2 * TOP or self.horizon < 1 or self.workers < 1:
            raise ValueError(f"need --instances in [1, 30] (the VP² benchmark set), --samples >= {2 * TOP}, "
                             "--horizon >= 1 and --workers >= 1")
        if not self.std_scales or min(self.std_scales) <= 0:
            raise ValueError(f"--std-scales must be > 0, got {self.std_scales}")


def _play(job: tuple[int, np.ndarray]) -> dict:
    """Instance ``i``'s start frame, goal, direction to the button, and each sequence's real frames and
    final distance to the button (m)."""
    i, actions = job
    env = envs.make("push_red")
    obs, info = env.reset(options={"instance": i})
    raw = env.unwrapped
    state, d0 = raw.get_state(), raw.button - raw.end_effector
    frames, dist = [], []
    for seq in actions:
        raw.set_state(state, render=False)
        steps = [env.step(a) for a in seq]
        frames.append(np.stack([step[0] for step in steps]))
        dist.append(steps[-1][4]["distance"])
    env.close()
    return {"start": obs, "goal": info["goal"], "d0": d0, "frames": np.stack(frames), "dist": np.array(dist)}


def _rank(x: np.ndarray) -> np.ndarray:
    return np.argsort(np.argsort(x)).astype(np.float64)


def _scores(cost: np.ndarray, ep: dict, actions: np.ndarray, gamma: float) -> dict:
    progress = 100 * (np.linalg.norm(ep["d0"]) - ep["dist"])  # cm nearer the button
    rc, rd = _rank(cost), _rank(ep["dist"])
    rho = float(np.corrcoef(rc, rd)[0, 1]) if rc.std() and rd.std() else 0.0
    w = np.exp(-gamma * (cost - cost.min()))
    first = (w[:, None] * actions[:, 0, :3]).sum(0) / w.sum()
    cos = float(first @ ep["d0"] / (np.linalg.norm(first) * np.linalg.norm(ep["d0"]) + 1e-12))
    return {"rho": rho, "top": progress[np.argsort(cost)[:TOP]].mean(), "all": progress.mean(),
            "best": np.sort(progress)[-TOP:].mean(), "cos": cos}


def main(cfg: CostRankingConfig) -> list[dict]:
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    sim = VideoSimulator.from_pretrained(cfg.model, dtype=resolve_dtype(cfg.precision))
    classifier = load_classifiers(cfg.classifier)
    shape = (sim.frame_size, sim.frame_size, 3)
    pc = PlannerConfig(samples=cfg.samples, horizon=cfg.horizon)
    costs = {kind: VideoCost(kind, shape, classifier, cfg.mse_weight) for kind in ("mse", "classifier")}
    actions = {(s, i): Planner(pc, -np.ones(5), np.ones(5), seed=i).sample(np.asarray(pc.std) * s).astype(np.float32)
               for s in cfg.std_scales for i in range(cfg.instances)}
    with mp.get_context("spawn").Pool(cfg.workers) as pool:
        played = dict(zip(actions, pool.map(_play, [(i, a) for (_, i), a in actions.items()])))
    rows = []
    for s in cfg.std_scales:
        scores: dict = {}
        for i in range(cfg.instances):
            ep, acts = played[s, i], actions[s, i]
            predicted = sim.rollout(ep["start"][None], acts, SamplingConfig(temperature=cfg.temperature), seed=i)
            for source, frames in (("real", ep["frames"]), ("model", predicted)):
                for kind, cost in costs.items():
                    scores.setdefault((source, kind), []).append(_scores(cost(frames, ep["goal"]), ep, acts, cfg.gamma))
        for (source, kind), per in scores.items():
            mean = {m: float(np.mean([p[m] for p in per])) for m in per[0]}
            rows.append({"std_scale": s, "frames": source, "cost": kind, "rho": round(mean["rho"], 3),
                         "top4_cm": round(mean["top"], 2), "all_cm": round(mean["all"], 2),
                         "best4_cm": round(mean["best"], 2), "mppi_cos": round(mean["cos"], 3)})
            print(rows[-1])
    write_table(cfg.out, "cost_ranking", rows,
                ["std_scale", "frames", "cost", "rho", "top4_cm", "all_cm", "best4_cm", "mppi_cos"],
                {"config": {**cfg.__dict__, "out": str(cfg.out)}})
    _plot(rows, cfg.std_scales, cfg.out / "cost_ranking.png")
    return rows


def _plot(rows: list[dict], scales: tuple[float, ...], path: Path) -> None:
    """Spearman's rho per cost, real beside predicted frames, one panel per noise scale."""
    with figure(path, 1, len(scales), figsize=(4.5 * len(scales), 3.5), sharey=True) as (fig, axes):
        for ax, s in zip(axes[0], scales):
            for j, source in enumerate(("real", "model")):
                mine = [r for r in rows if r["std_scale"] == s and r["frames"] == source]
                ax.bar(np.arange(len(mine)) + 0.4 * j, [r["rho"] for r in mine], 0.4, label=f"{source} frames")
            ax.set_xticks(np.arange(len(mine)) + 0.2, [r["cost"] for r in mine], fontsize=7)
            ax.set_title(f"noise std x{s:g}")
        axes[0, 0].set_ylabel("Spearman rho: cost vs distance left")
        axes[0, 0].legend(fontsize=8)


def cli() -> None:
    run(main, CostRankingConfig)


if __name__ == "__main__":
    cli()
