"""``env_speed``: env steps/s (RoboDesk render settings side by side) and ``collect`` throughput.

    env_speed --out results/env_speed [--quick]

Writes ``env_speed.md``, ``env_speed.csv``, ``env_speed.json`` and ``env_speed.png`` to ``--out``.
Every row is measured in the same run on the same machine, so ratios between rows are meaningful.
"""
from __future__ import annotations

import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import envs
from envs.collect import CollectConfig, collect
from experiments.tables import figure, write_table
from vidit.cli import run


@dataclass
class SpeedConfig:
    """Measure env steps/s and collect throughput."""
    out: Path = field(default=Path("results/env_speed"), metadata={"help": "output folder"})
    steps: int = field(default=30, metadata={"help": "random steps timed per env setting"})
    episodes: int = field(default=4, metadata={"help": "episodes per collect measurement"})
    quick: bool = field(default=False, metadata={"help": "a few steps only (CI-sized)"})
    seed: int = 0

    def __post_init__(self):
        if self.steps < 1 or self.episodes < 1:
            raise ValueError("--steps and --episodes must be >= 1")


def time_steps(name: str, steps: int, seed: int, **kwargs) -> dict:
    env = envs.make(name, **kwargs)
    t0 = time.perf_counter()
    env.reset(seed=seed)
    reset_s = time.perf_counter() - t0
    env.action_space.seed(seed)
    t0 = time.perf_counter()
    for _ in range(steps):
        _, _, term, trunc, _ = env.step(env.action_space.sample())
        if term or trunc:
            env.reset()
    dt = time.perf_counter() - t0
    env.close()
    return {"reset_s": round(reset_s, 3), "steps_per_s": round(steps / dt, 3), "s_per_step": round(dt / steps, 4)}


def measure(cfg: SpeedConfig) -> list[dict]:
    from envs.robodesk import RenderConfig
    steps = 2 if cfg.quick else cfg.steps
    robodesk_look = RenderConfig(shadow_size=4096, reflection=True)
    settings = [
        ("push_red", "render after every repeat, RoboDesk quality (a wrapper over action_repeat=1)",
         max(1, steps // 15), dict(render=robodesk_look, render_every_repeat=True)),
        ("push_red", "render once per step, RoboDesk quality", steps, dict(render=robodesk_look)),
        ("push_red", "render once per step, vidit default (1024 shadows, no reflection)", steps, {}),
        ("crafter", "Crafter 64x64", steps * 10, {}),
    ]
    rows = []
    for name, what, n, kwargs in settings:
        rows.append({"measure": "env step", "env": envs.resolve(name)[0], "setting": what, "n": n,
                     **time_steps(name, n, cfg.seed, **kwargs)})
        print(rows[-1])
    episodes = 2 if cfg.quick else cfg.episodes
    for name, policy in (("push_red", "expert"), ("crafter", "expert")):
        for workers in (1, 2):
            with tempfile.TemporaryDirectory() as tmp:
                out = collect(CollectConfig(env=name, policy=policy, episodes=episodes, out=Path(tmp), workers=workers,
                                            max_steps=3 if cfg.quick else None))
            rows.append({"measure": "collect", "env": envs.resolve(name)[0], "setting": f"{workers} worker(s)",
                         "n": episodes, "steps_per_s": out["steps_per_s"],
                         "episodes_per_min": round(60 * episodes / out["seconds"], 2)})
            print(rows[-1])
    return rows


def write_outputs(cfg: SpeedConfig, rows: list[dict]) -> None:
    keys = ["measure", "env", "setting", "n", "steps_per_s", "s_per_step", "reset_s", "episodes_per_min"]
    stamp = write_table(cfg.out, "env_speed", rows, keys, {"config": {**asdict(cfg), "out": str(cfg.out)}})
    with figure(cfg.out / "env_speed.png", figsize=(10, 0.8 + 0.45 * len(rows))) as (_, axes):
        ax = axes[0, 0]
        labels = [f"{r['env'].split('/')[-1]} {r['measure']}: {r['setting']}" for r in rows]
        ax.barh(labels, [r["steps_per_s"] for r in rows], color=["C0" if r["measure"] == "env step" else "C1" for r in rows])
        ax.set_xscale("log")
        ax.set_xlabel("env steps / s (log scale)")
        ax.set_title(f"vidit env speed, {stamp['date']}, {stamp['machine']}")


def main(cfg: SpeedConfig) -> None:
    rows = measure(cfg)
    write_outputs(cfg, rows)
    print(f"{cfg.out}/env_speed.md")
    print((cfg.out / "env_speed.md").read_text())


def cli() -> None:
    run(main, SpeedConfig)


if __name__ == "__main__":
    cli()
