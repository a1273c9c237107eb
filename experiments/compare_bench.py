"""``compare_bench``: does a change to the MPC agent press more often, or is it seed noise?

    python -m experiments.compare_bench results/mpc_bench_k8 results/mpc_bench_k8k025 [--setting mpc]

The first ``mpc_bench`` folder is the baseline; every other one is paired with it episode by episode,
on the ``(seed, instance)`` pairs both hold. Per candidate: success of each on those episodes, the
difference (candidate - baseline) with a 95% bootstrap interval that resamples instances (an instance's
episodes stay together: some starts are hard for every planner), the discordant episodes (only the
baseline pressed / only the candidate did) and the exact two-sided sign test (McNemar) on them.
Writes ``compare_bench.{md,csv,json,png}`` to ``--out`` (the plot: each run's difference and interval).
"""
from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from experiments.tables import figure, write_table
from vidit.cli import UsageError, run

EPISODE = re.compile(r"seed(\d+)_instance(\d+)")


@dataclass
class CompareBenchConfig:
    """Pair mpc_bench runs by episode: success difference with a bootstrap interval and a sign test."""
    runs: tuple[Path, ...] = field(default=(), metadata={
        "help": "mpc_bench output folders, the baseline first", "positional": True})
    setting: str = field(default="mpc", metadata={"help": "which setting's episodes (runs/<setting>/)"})
    out: Path = field(default=Path("results/compare_bench"), metadata={"help": "output folder"})
    resamples: int = field(default=10000, metadata={"help": "bootstrap resamples"})
    seed: int = field(default=0, metadata={"help": "seed of the bootstrap resampling"})

    def __post_init__(self):
        if len(self.runs) < 2:
            raise UsageError("give at least two mpc_bench folders: the baseline, then the runs to compare")
        if self.resamples < 100:
            raise UsageError("--resamples must be >= 100")


def successes(folder: Path, setting: str) -> dict[tuple[int, int], bool]:
    """``{(seed, instance): pressed}`` of the finished episodes of ``setting`` in an mpc_bench folder."""
    found = {}
    for path in sorted((folder / "runs" / setting).glob("seed*_instance*/metrics.json")):
        seed, instance = map(int, EPISODE.fullmatch(path.parent.name).groups())
        found[seed, instance] = bool(json.loads(path.read_text())["episodes"][0]["success"])
    if not found:
        raise UsageError(f"{folder}: no finished {setting!r} episodes "
                         f"(expected runs/{setting}/seed*_instance*/metrics.json)")
    return found


def sign_test(a_only: int, b_only: int) -> float:
    """Exact two-sided binomial p-value of ``a_only`` vs ``b_only`` discordant pairs (1.0 when there are none)."""
    n, k = a_only + b_only, min(a_only, b_only)
    return min(1.0, 2 * sum(math.comb(n, i) for i in range(k + 1)) / 2 ** n) if n else 1.0


def compare(base: dict, cand: dict, resamples: int, rng: np.random.Generator) -> dict:
    """Paired comparison of two ``successes`` maps on their shared episodes."""
    keys = sorted(base.keys() & cand.keys())
    if not keys:
        raise UsageError("the runs share no (seed, instance) episode")
    a = np.array([base[k] for k in keys], float)
    b = np.array([cand[k] for k in keys], float)
    instances = np.array([k[1] for k in keys])
    groups = [np.flatnonzero(instances == i) for i in np.unique(instances)]
    diff_sum = np.array([(b[g] - a[g]).sum() for g in groups])
    count = np.array([len(g) for g in groups])
    pick = rng.integers(0, len(groups), (resamples, len(groups)))
    low, high = np.quantile(diff_sum[pick].sum(1) / count[pick].sum(1), [0.025, 0.975])
    a_only, b_only = int(((a == 1) & (b == 0)).sum()), int(((a == 0) & (b == 1)).sum())
    return {"episodes": len(keys), "seeds": len({k[0] for k in keys}), "baseline_success": round(a.mean(), 3),
            "success": round(b.mean(), 3), "difference": round(b.mean() - a.mean(), 3),
            "ci95_low": round(float(low), 3), "ci95_high": round(float(high), 3),
            "only_baseline": a_only, "only_run": b_only, "sign_test_p": round(sign_test(a_only, b_only), 3)}


def main(cfg: CompareBenchConfig) -> list[dict]:
    maps = [successes(f, cfg.setting) for f in cfg.runs]
    rng = np.random.default_rng(cfg.seed)
    rows = [{"run": str(f), **compare(maps[0], m, cfg.resamples, rng)} for f, m in zip(cfg.runs[1:], maps[1:])]
    keys = list(rows[0])
    write_table(cfg.out, "compare_bench", rows, keys, {"baseline": str(cfg.runs[0]), "setting": cfg.setting})
    with figure(cfg.out / "compare_bench.png", figsize=(7, 1 + 0.5 * len(rows))) as (_, axes):
        ax, y = axes[0, 0], np.arange(len(rows))
        d = np.array([r["difference"] for r in rows])
        err = [d - [r["ci95_low"] for r in rows], [r["ci95_high"] for r in rows] - d]
        ax.errorbar(d, y, xerr=err, fmt="o", capsize=4)
        ax.axvline(0, color="gray", lw=1)
        ax.set_yticks(y, [f"{Path(r['run']).name} ({r['episodes']} ep.)" for r in rows])
        ax.set_xlabel(f"success - {Path(cfg.runs[0]).name}'s (95% interval)")
    print(f"baseline {cfg.runs[0]} ({cfg.setting}); written to {cfg.out}/compare_bench.md")
    print((cfg.out / "compare_bench.md").read_text())
    return rows


def cli() -> None:
    run(main, CompareBenchConfig)


if __name__ == "__main__":
    cli()
