"""``mpc_trace``: why did an MPC episode on push_red fail? One episode, step by step.

    python -m experiments.mpc_trace --instance 27 --seed 4027 --samples 32 --horizon 4 --context-frames 0 \
        --std 1.5 1.5 1.5 .3 .3 --classifier push-red-k8 --threads 1   # = mpc_bench's seed 4, instance 27

Takes ``run_agent``'s flags (``--agent mpc`` or ``oracle``) and plays one episode of a push_red instance.
After every step it records the end effector's offset from the red button (cm: button minus end
effector, so z < 0 is above it; the fingertips press at about -6), the action, whether the button is
down, and what the planner saw: the share of its sampled futures that show the red light on at some
step (a pixel probe of the predicted frames). Imagined presses where the real button stays up are the
predictor's error, not the cost's. Writes ``mpc_trace.{md,csv,json}`` to ``--out``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import torch

from agents.run_agent import RunAgentConfig, config_json, make_agent, make_env
from envs.robodesk import red_light_lit
from experiments.tables import write_table
from vidit.cli import UsageError, run


@dataclass
class MPCTraceConfig(RunAgentConfig):
    """Trace one MPC episode on a push_red instance: arm, action, button and the planner's predictions."""
    agent: Literal["mpc", "oracle"] = field(default="mpc", metadata={"help": "mpc (world model) or oracle"})
    out: Path = field(default=Path("results/mpc_trace"), metadata={"help": "output folder"})


class _Recorder:
    """A predictor that remembers the share of sampled futures showing the red light on."""

    def __init__(self, predictor):
        self.predictor, self.lit = predictor, []

    def __call__(self, row, context, past_actions, actions, seed):
        frames = self.predictor(row, context, past_actions, actions, seed)
        self.lit.append(float(red_light_lit(frames).any(axis=1).mean()))
        return frames

    def close(self) -> None:
        self.predictor.close()


def main(cfg: MPCTraceConfig) -> list[dict]:
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    env = make_env(cfg)
    if env.spec.id != "vidit/PushRed-v0":
        env.close()
        raise UsageError(f"mpc_trace reads push_red's simulator state; --env {cfg.env} is {env.spec.id}")
    agent, ids, _ = make_agent(cfg, [env])
    agent.predictor = recorder = _Recorder(agent.predictor)
    obs, info = env.reset(seed=cfg.seed, options={"instance": cfg.instance})
    agent.reset([obs], None, [cfg.seed], [info["goal"]])
    base, rows, done = env.unwrapped, [], False
    while not done:
        action = agent.act([obs])[0]
        obs, _, terminated, truncated, info = env.step(action)
        offset = 100 * (base.button - base.end_effector)
        rows.append({"step": len(rows) + 1, "distance_cm": round(100 * info["distance"], 1),
                     **{f"offset_{k}": round(float(v), 1) for k, v in zip("xyz", offset)},
                     "action": " ".join(f"{a:+.2f}" for a in action), "button_down": base.pressed,
                     "success": info["success"], "predicted_lit": round(recorder.lit[-1], 2)})
        done = terminated or truncated or (cfg.stop_on_success and info["success"])
    agent.close()
    env.close()
    write_table(cfg.out, "mpc_trace", rows, list(rows[0]), {"models": ids, "config": config_json(cfg),
                                                           "plan_s": float(np.mean(agent.plan_seconds))})
    print((cfg.out / "mpc_trace.md").read_text())
    return rows


def cli() -> None:
    run(main, MPCTraceConfig)


if __name__ == "__main__":
    cli()
