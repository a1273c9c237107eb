"""``mpc_bench``: VP²'s planning protocol on push_red, our MPC agents beside VP²'s published numbers.

    mpc_bench --out results/mpc_bench --samples 32 --horizon 4 --context-frames 0 --std 1 1 1 .2 .2 \
              --seeds 1 --settings mpc random --workers 2  # as benchmarked (~1 h on 2 cores)
    mpc_bench --out results/mpc_vp2                            # VP²'s 200 x 10, seeds 1-4: days on 2 CPU cores
    mpc_bench --settings mpc oracle --oracle-instances 6 --workers 2
    mpc_bench --planner cem --samples 100 --out results/mpc_cem  # sweeps are one flag away
    mpc_bench --quick                                          # a few instances, few samples: minutes on 2 cores
    mpc_bench --held-out --seeds 5 --out results/mpc_bench_held_out  # instances 30-59, one seed set

Every episode is one ``run_agent`` run (15 control steps, stop at the first press) kept under
``--out/runs/<setting>/seed<S>_instance<I>/`` with its mp4 and ``metrics.json``. It runs with
``run_agent --seed 1000*S+I --instance I``, so the planner draws its own noise on every instance, as
VP²'s one seeded process running the instances in turn does (``python -m experiments.mpc_trace --seed
4027 --instance 27`` with the same flags replays seed 4's instance 27). A rerun skips the episodes
already there, so a killed benchmark continues where it stopped. ``--out`` remembers the
configuration it was started with (``bench_config.json``) and refuses to mix in results of another.
Settings: ``mpc`` (the world model, each instance's goal image), ``mpc-demo`` (the goal imagined from
the shipped push_red demo of a held-out instance), ``oracle`` (the same MPC with the real simulator as
predictor: VP²'s simulator oracle), ``random``, ``expert``. Writes ``mpc_bench.{md,csv,json,png}``:
success (mean over seeds, min-max across seeds), mean seconds per planning call and per episode, and
the mean final distance of the end effector to the button (cm; graded where success is rare), and the
near misses: the share of episodes that failed although the end effector came within 10 cm of the button
(it presses at 6-7 cm: the site sits above the fingertips).

More machines: each episode is independent, so split the ``(setting, seed, instance)`` grid. With Ray,
``ray.remote(num_cpus=2)(experiments.episodes.run_episode)`` over ``episode_configs(cfg)`` and run
``mpc_bench`` once more at the end to gather the table; with one process per GPU, start one
``CUDA_VISIBLE_DEVICES=K mpc_bench --shard K/N --device cuda`` per GPU on the same ``--out`` (shared
storage), then gather the same way.
"""
from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Optional

import numpy as np

from agents.mpc import RETIRED, MPCConfig
from agents.run_agent import RunAgentConfig, finished_run
from experiments.episodes import EXECUTOR_FLAGS, ExecutorConfig, run_all
from experiments.tables import figure, write_table
from vidit.cli import UsageError, build, config_json, defaults_json, flatten, run
from vidit.runs import claim_out
from worldmodel.precision import Precision, device_field, precision_field
from worldmodel.sampling import SamplingConfig
from worldmodel.simulator import resolve_model

# VP² (Tian et al., ICLR 2023) and iVideoGPT (Wu et al., NeurIPS 2024): push_red success with MPC.
VP2_PUSH_RED = {"iVideoGPT": 0.922, "SVG'": 0.760, "MCVD": 0.733, "FitVid": 0.587, "Struct-VRNN": 0.307,
                "MaskViT": 0.240, "simulator oracle (VP²)": 0.900}
SETTINGS = ("mpc", "mpc-demo", "oracle", "random", "expert")
NEAR_MISS_M = 0.10  # a failure that came this near the button (m) reached it and did not press
# Flags that change how fast a run goes, not what it measures: a resumed benchmark may change them.
VOLATILE = {"out", "workers", "threads", "shard", "device", *EXECUTOR_FLAGS}
# Which episodes to run: each episode's folder checks its own config, so a benchmark grows (more seeds or
# instances) or reports a subset without mixing results.
EPISODES = frozenset({"settings", "seeds", "instances", "oracle_instances", "demo_instances"})
HELD_OUT = 30  # the first held-out push_red instance
# Recorded in bench_config.json: folders whose episodes used the run seed alone (before 2026-11-27) are refused.
EPISODE_SEED = "1000*seed+instance"


def episode_seed(seed: int, instance: int) -> int:
    """``run_agent``'s seed for one benchmark episode: distinct per (seed, instance) and readable (4027)."""
    return 1000 * seed + instance


@dataclass
class _BenchSettings:
    out: Path = field(default=Path("results/mpc_bench"), metadata={"help": "output folder"})
    settings: tuple[str, ...] = field(default=("mpc", "mpc-demo", "random"), metadata={
        "help": f"which agents to run: {', '.join(SETTINGS)}"})
    instances: int = field(default=30, metadata={"help": "VP² benchmark instances 0..N-1"})
    held_out: bool = field(default=False, metadata={
        "help": "the held-out instances 30..30+N-1 instead (none of VP²'s benchmark set: a recipe tuned on 0-29 "
                "meets new starts there)"})
    seeds: tuple[int, ...] = field(default=(1, 2, 3, 4), metadata={"help": "planner/sampling seeds (VP²: 1-4)"})
    steps: int = field(default=15, metadata={"help": "control steps per episode (VP²: 15)"})
    model: Optional[str] = field(default=None, metadata={"help": "world model (none: the shipped push_red model)"})
    oracle_instances: Optional[int] = field(default=None, metadata={
        "help": "oracle: the first N instances only (none: all); it steps the real simulator samples x horizon times per step"})
    demo_instances: Optional[int] = field(default=None, metadata={
        "help": "mpc-demo: the first N instances only (none: all)"})
    oracle_samples: Optional[int] = field(default=None, metadata={"help": "oracle: samples (none: --samples)"})
    oracle_horizon: Optional[int] = field(default=None, metadata={"help": "oracle: horizon (none: --horizon)"})
    workers: int = field(default=1, metadata={"help": "episodes run in parallel processes"})
    threads: int = field(default=1, metadata={"help": "torch CPU threads per worker"})
    device: str = device_field()
    precision: Precision = precision_field()
    shard: Optional[str] = field(default=None, metadata={
        "help": "K/N: run only every N-th episode from the K-th (one process per GPU or machine)"})
    quick: bool = field(default=False, metadata={
        "help": "2 instances, 1 seed, 3 steps, 8 samples of horizon 2 (CI-sized)"})
    sampling: SamplingConfig = field(default_factory=SamplingConfig, metadata={"help": "how the world model samples"})
    run_on: ExecutorConfig = field(default_factory=ExecutorConfig, metadata={"help": "where the episodes run"})


@dataclass
class MPCBenchConfig(MPCConfig, _BenchSettings):
    """VP²'s push_red MPC protocol: success over instances and seeds, beside VP²'s numbers."""

    @classmethod
    def preset_model(cls, values: dict) -> Path:
        return resolve_model(values.get("model") or "robodesk-push-red")

    def __post_init__(self):
        MPCConfig.__post_init__(self)
        unknown = sorted(set(self.settings) - set(SETTINGS))
        if unknown:
            raise UsageError(f"unknown settings {unknown}; known: {', '.join(SETTINGS)}")
        if not 1 <= self.instances <= 30:
            raise UsageError(f"--instances must lie in [1, 30] (30 benchmark and, with --held-out, 30 held-out "
                             f"instances), got {self.instances}")
        if self.workers < 1 or self.threads < 1 or self.steps < 1 or not self.seeds:
            raise UsageError("--workers, --threads and --steps must be >= 1 and --seeds not empty")
        if self.shard is not None:
            k, _, n = self.shard.partition("/")
            if not (k.isdigit() and n.isdigit() and int(k) < int(n)):
                raise UsageError(f"--shard must be K/N with 0 <= K < N, got {self.shard!r}")
        if self.quick:
            self.instances, self.seeds, self.steps = min(self.instances, 2), self.seeds[:1], min(self.steps, 3)
            self.samples, self.horizon = min(self.samples, 8), min(self.horizon, 2)
            self.oracle_samples, self.oracle_horizon = min(self.oracle_samples or 4, 4), 2


def episode_configs(cfg: MPCBenchConfig) -> list[tuple[str, int, int, RunAgentConfig]]:
    """(setting, seed, instance, run_agent config) of every episode."""
    planner = {f.name: getattr(cfg, f.name) for f in fields(MPCConfig)}
    out = []
    for setting in cfg.settings:
        limit = {"oracle": cfg.oracle_instances, "mpc-demo": cfg.demo_instances}.get(setting)
        n = min(cfg.instances, limit or cfg.instances)
        first = HELD_OUT if cfg.held_out else 0
        kw: dict = dict(agent={"mpc-demo": "mpc"}.get(setting, setting))
        if setting == "mpc-demo":  # 4 imagined goals; the classifier keeps the likeliest success
            kw.update(demo="push_red.mp4", n_candidates=4)
        if setting == "oracle":
            kw.update(oracle_workers=0, samples=cfg.oracle_samples or cfg.samples,
                      horizon=cfg.oracle_horizon or cfg.horizon)
        for seed in cfg.seeds:
            for instance in range(first, first + n):
                out.append((setting, seed, instance, build(RunAgentConfig, {
                    **planner, "env": "push_red", "episodes": 1, "seed": episode_seed(seed, instance),
                    "instance": instance,
                    "model": cfg.model, **flatten(cfg.sampling), "max_steps": cfg.steps,
                    "threads": cfg.threads, "device": cfg.device, "precision": cfg.precision, **kw,
                    "out": cfg.out / "runs" / setting / f"seed{seed}_instance{instance:02d}"})))
    return out


def main(cfg: MPCBenchConfig) -> list[dict]:
    resolve_model(cfg.model or "robodesk-push-red")  # a wrong --model fails here, before --out is touched
    config = {k: v for k, v in config_json(cfg).items() if k not in VOLATILE}
    claim_out(cfg.out, {**config, "episode_seed": EPISODE_SEED}, EPISODES, defaults_json(MPCBenchConfig), RETIRED)
    jobs = episode_configs(cfg)
    mine = jobs
    if cfg.shard:
        k, n = map(int, cfg.shard.split("/"))
        mine = jobs[k::n]
    run_all([job[3] for job in mine], cfg.workers, "mpc_bench", cfg.run_on)
    results = {(s, seed, i): finished_run(c) for s, seed, i, c in jobs}
    if any(m is None for m in results.values()):  # other shards still running
        print(f"mpc_bench: {sum(m is None for m in results.values())} episodes of other shards are not done; "
              "run mpc_bench again when they are to write the table")
        return []
    rows = summarize(cfg, results)
    keys = ["setting", "episodes", "success", "seed_min", "seed_max", "plan_s", "episode_s", "final_cm", "near_miss",
            "source"]
    write_table(cfg.out, "mpc_bench", rows, keys, {"config": config_json(cfg)})
    _plot(rows, cfg.out / "mpc_bench.png")
    print((cfg.out / "mpc_bench.md").read_text())
    return rows


def summarize(cfg: MPCBenchConfig, results: dict[tuple[str, int, int], dict]) -> list[dict]:
    """One row per setting (success averaged over seeds, min-max across seeds), then VP²'s rows."""
    rows = []
    for setting in cfg.settings:
        per_seed, plan, wall, dist, near, n = [], [], [], [], [], 0
        for seed in cfg.seeds:
            eps = [m for (s, sd, _), m in results.items() if s == setting and sd == seed]
            per_seed.append(np.mean([m["episodes"][0]["success"] for m in eps]))
            plan += [m["summary"]["mean_plan_s"] for m in eps if "mean_plan_s" in m["summary"]]
            wall += [m["summary"]["total_wall_s"] for m in eps]
            dist += [m["episodes"][0]["final_distance"] for m in eps if "final_distance" in m["episodes"][0]]
            near += [not e["success"] and e["min_distance"] < NEAR_MISS_M
                     for e in (m["episodes"][0] for m in eps) if "min_distance" in e]
            n += len(eps)
        rows.append({"setting": setting, "episodes": n, "success": round(float(np.mean(per_seed)), 3),
                     "seed_min": round(float(min(per_seed)), 3), "seed_max": round(float(max(per_seed)), 3),
                     "plan_s": round(float(np.mean(plan)), 2) if plan else "-",
                     "episode_s": round(float(np.mean(wall)), 1),
                     "final_cm": round(100 * float(np.mean(dist)), 1) if dist else "-",
                     "near_miss": round(float(np.mean(near)), 3) if near else "-", "source": "ours"})
    rows += [{"setting": name, "success": value, "source": "VP² / iVideoGPT papers"}
             for name, value in VP2_PUSH_RED.items()]
    return rows


def _plot(rows: list[dict], path: Path) -> None:
    with figure(path, figsize=(1 + 0.7 * len(rows), 3.8)) as (fig, axes):
        ax = axes[0, 0]
        ours = [r["source"] == "ours" for r in rows]
        err = [[r["success"] - r.get("seed_min", r["success"]) for r in rows],
               [r.get("seed_max", r["success"]) - r["success"] for r in rows]]
        ax.bar(range(len(rows)), [r["success"] for r in rows], yerr=err, capsize=3,
               color=["C0" if o else "C7" for o in ours])
        ax.set_xticks(range(len(rows)), [r["setting"] for r in rows], rotation=35, ha="right", fontsize=8)
        ax.set_ylim(0, 1.05)
        ax.set_ylabel("push_red success (min-max over seeds)")
        ax.set_title("VP² push_red: ours (blue) vs published (grey)")


def cli() -> None:
    run(main, MPCBenchConfig)


if __name__ == "__main__":
    cli()
