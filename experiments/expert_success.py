"""``expert_success``: success rates of the scripted experts and the random policy in the real envs.

    expert_success --out results/experts [--workers 2] [--quick]

push_red on the 30 VP² benchmark instances (expert at noise 0, 0.1, 0.2; random), Crafter chop_wood
and eat_cow on 50 seeds with a 100-step budget. The episodes are kept as datasets under
``--out/episodes/`` (mp4 per episode), so a rerun resumes and every number can be watched.
Writes ``expert_success.{md,csv,json,png}``.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pyarrow.compute as pc
import pyarrow.parquet as pq

from envs.collect import CollectConfig, collect
from experiments.tables import figure, write_table
from vidit.cli import run


@dataclass
class ExpertSuccessConfig:
    """Measure expert and random success rates in the real envs."""
    out: Path = field(default=Path("results/experts"), metadata={"help": "output folder"})
    workers: int = field(default=2, metadata={"help": "worker processes per setting"})
    seeds: int = field(default=50, metadata={"help": "Crafter episodes (seeds 0..N-1)"})
    quick: bool = field(default=False, metadata={"help": "2 episodes per setting (CI-sized)"})


def settings(cfg: ExpertSuccessConfig) -> list[tuple[str, CollectConfig]]:
    n_push, n_crafter = (2, 2) if cfg.quick else (30, cfg.seeds)
    rows = [(f"push_red {p} noise {z}", dict(env="push_red", policy=p, noise=z, episodes=n_push, instances="benchmark"))
            for p, z in (("expert", 0.0), ("expert", 0.1), ("expert", 0.2), ("random", 0.0))]
    rows += [(f"crafter {t} {p}", dict(env="crafter", task=t, policy=p, episodes=n_crafter))
             for t in ("chop_wood", "eat_cow") for p in ("expert", "random")]
    return [(name, CollectConfig(**kw, workers=cfg.workers, out=cfg.out / "episodes" / name.replace(" ", "_")))
            for name, kw in rows]


def summarize(name: str, c: CollectConfig) -> dict:
    table = pq.read_table(c.out / "data")
    episodes = np.unique(table.column("episode_index").to_numpy())
    first = []
    for e in episodes:
        ok = table.filter(pc.equal(table.column("episode_index"), e)).column("success").to_numpy()
        first.append(int(np.argmax(ok)) + 1 if ok.any() else None)
    wins = [f for f in first if f is not None]
    return {"setting": name, "env": c.env, "policy": c.policy, "noise": c.noise, "episodes": len(episodes),
            "success": round(len(wins) / len(episodes), 3),
            "mean_steps_to_success": round(float(np.mean(wins)), 1) if wins else None}


def main(cfg: ExpertSuccessConfig) -> None:
    rows = []
    for name, c in settings(cfg):
        collect(c)
        rows.append(summarize(name, c))
        print(rows[-1])
    keys = ["setting", "env", "policy", "noise", "episodes", "success", "mean_steps_to_success"]
    stamp = write_table(cfg.out, "expert_success", rows, keys, {"config": {**asdict(cfg), "out": str(cfg.out)}})
    with figure(cfg.out / "expert_success.png", figsize=(8, 4)) as (_, axes):
        ax = axes[0, 0]
        ax.barh([r["setting"] for r in rows], [r["success"] for r in rows], color="C2")
        ax.set_xlim(0, 1)
        ax.set_xlabel("success rate")
        ax.set_title(f"scripted experts vs random, {stamp['date']}, {stamp['machine']}")
    print((cfg.out / "expert_success.md").read_text())


def cli() -> None:
    run(main, ExpertSuccessConfig)


if __name__ == "__main__":
    cli()
