"""``imitation_bench``: the VidIT imitation agent in closed loop, beside random and expert policies.

    python -m experiments.imitation_bench --out results/imitation_bench [--tasks chop_wood eat_cow push_red]

Per task, ``run_agent`` runs with the in-class demo (the task's shipped demo), a contrastive demo
(another task's; Crafter only), a random demo (a random policy's shipped clip), no demo (query only),
and the random and expert policies: Crafter on seeds 0..N-1 with a 100-step budget, push_red on the
30 VP² benchmark instances. The paper's claim
holds when the in-class demo beats the other demo settings. Each setting's episodes (mp4s,
``metrics.json``) stay under ``--out/runs/``, so a rerun skips finished settings. Writes
``imitation_bench.{md,csv,json,png}`` with 95% Wilson intervals.
"""
from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Optional

from agents.run_agent import RunAgentConfig, finished_run
from agents.run_agent import main as run_agent
from experiments.tables import figure, write_table
from vidit.cli import UsageError, build, run

CONTRAST = {"chop_wood": "eat_cow", "eat_cow": "chop_wood"}


@dataclass
class ImitationBenchConfig:
    """Closed-loop success of the imitation agent (demo types) vs random and expert policies."""
    out: Path = field(default=Path("results/imitation_bench"), metadata={"help": "output folder"})
    tasks: tuple[str, ...] = field(default=("chop_wood", "push_red"), metadata={
        "help": "chop_wood, eat_cow (Crafter), push_red"})
    seeds: int = field(default=50, metadata={"help": "Crafter episodes (seeds 0..N-1); push_red runs its 30 instances"})
    batch: Optional[int] = field(default=None, metadata={
        "help": "episodes run side by side, planned in one batched call (none: 50 on Crafter, 10 on push_red, "
                "whose envs each hold a renderer)"})
    crafter_model: Optional[str] = field(default=None, metadata={"help": "Crafter world model (none: shipped)"})
    crafter_idm: Optional[str] = field(default=None, metadata={"help": "Crafter IDM (none: shipped)"})
    push_red_model: Optional[str] = field(default=None, metadata={"help": "push_red world model (none: shipped)"})
    push_red_idm: Optional[str] = field(default=None, metadata={"help": "push_red IDM (none: shipped)"})
    quick: bool = field(default=False, metadata={"help": "2 episodes of at most 4 steps per setting (CI-sized)"})
    threads: Optional[int] = field(default=None, metadata={"help": "torch CPU threads"})

    def __post_init__(self):
        unknown = sorted(set(self.tasks) - {"chop_wood", "eat_cow", "push_red"})
        if unknown:
            raise UsageError(f"unknown tasks {unknown}; known: chop_wood, eat_cow, push_red")
        if self.seeds < 1 or (self.batch is not None and self.batch < 1):
            raise UsageError("--seeds and --batch must be >= 1")


def settings(cfg: ImitationBenchConfig) -> list[tuple[str, str, RunAgentConfig]]:
    """(task, setting, run_agent config) for every run."""
    out = []
    for task in cfg.tasks:
        push_red = task == "push_red"
        models = (cfg.push_red_model, cfg.push_red_idm) if push_red else (cfg.crafter_model, cfg.crafter_idm)
        episodes = 2 if cfg.quick else (30 if push_red else cfg.seeds)
        demos = {"in-class demo": f"{task}.mp4", "no demo": None}
        if not push_red:
            demos["contrastive demo"] = f"{CONTRAST[task]}.mp4"
        demos["random demo"] = "push_red_random.mp4" if push_red else "crafter_random.mp4"
        runs = [(name, dict(agent="imitate", demo=demo)) for name, demo in demos.items()]
        runs += [("random policy", dict(agent="random")), ("expert policy", dict(agent="expert"))]
        for name, kw in runs:
            out.append((task, name, build(RunAgentConfig, dict(
                env=task, episodes=episodes, batch=cfg.batch or (10 if push_red else 50), model=models[0], idm=models[1],
                threads=cfg.threads, max_steps=4 if cfg.quick else None,
                out=cfg.out / "runs" / f"{task}_{name.replace(' ', '_')}", **kw))))
    return out


def wilson(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson score interval of a success rate."""
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def main(cfg: ImitationBenchConfig) -> None:
    rows = []
    for task, name, run_cfg in settings(cfg):
        metrics = finished_run(run_cfg)
        if metrics is None:
            run_agent(run_cfg)
            metrics = json.loads((run_cfg.out / "metrics.json").read_text())
        wins = sum(e["success"] for e in metrics["episodes"])
        n = len(metrics["episodes"])
        low, high = wilson(wins, n)
        rows.append({"task": task, "setting": name, "episodes": n, "success": round(wins / n, 3),
                     "ci95": f"{low:.2f}-{high:.2f}", "mean_steps": round(metrics["summary"]["mean_steps"], 1),
                     "wall_s": round(metrics["summary"]["total_wall_s"], 1),
                     "model": metrics.get("model", "-"), "tokenizer": metrics.get("tokenizer", "-")})
    keys = ["task", "setting", "episodes", "success", "ci95", "mean_steps", "wall_s"]
    write_table(cfg.out, "imitation_bench", rows, keys, {"config": {**asdict(cfg), "out": str(cfg.out)}})
    _plot(rows, cfg.out / "imitation_bench.png")
    print((cfg.out / "imitation_bench.md").read_text())


def _plot(rows: list[dict], path: Path) -> None:
    tasks = list(dict.fromkeys(r["task"] for r in rows))
    with figure(path, 1, len(tasks), figsize=(4.5 * len(tasks), 3.5)) as (fig, axes):
        for ax, task in zip(axes[0], tasks):
            sub = [r for r in rows if r["task"] == task]
            lows = [r["success"] - float(r["ci95"].split("-")[0]) for r in sub]
            highs = [float(r["ci95"].split("-")[1]) - r["success"] for r in sub]
            ax.bar(range(len(sub)), [r["success"] for r in sub], yerr=[lows, highs], capsize=3,
                   color=["C0" if "demo" in r["setting"] else "C7" for r in sub])
            ax.set_xticks(range(len(sub)), [r["setting"] for r in sub], rotation=30, ha="right", fontsize=8)
            ax.set_ylim(0, 1.05)
            ax.set_title(f"{task} ({sub[0]['episodes']} episodes)")
            ax.set_ylabel("success rate (95% CI)")


def cli() -> None:
    run(main, ImitationBenchConfig)


if __name__ == "__main__":
    cli()
