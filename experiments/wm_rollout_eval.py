"""``wm_rollout_eval``: action-conditioned prediction quality of a world model on unseen episodes.

    python -m experiments.wm_rollout_eval --model robodesk-push-red --data results/experts/episodes/push_red_expert_noise_0.1

For each episode: the first ``--context`` real frames and the episode's real actions -> ``--horizon``
imagined frames, scored by PSNR against the real frames at every step. On push_red it also runs the
button check: does the imagined final frame show the red light on, as the real one does (and is it
lit at any imagined step)? ``--horizon 0`` rolls out to the episode's end. Writes
``wm_rollout_eval.{md,csv,json}`` and a PNG strip (real above imagined) per episode to ``--out``.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from envs.dataset import EpisodeDataset
from envs.robodesk import red_light_lit
from experiments.tables import write_table
from vidit.cli import run
from vidit.files import atomic_path
from worldmodel.metrics import psnr
from worldmodel.precision import Precision, resolve_dtype
from worldmodel.simulator import VideoSimulator


@dataclass
class EvalConfig:
    """Score a world model's action-conditioned rollouts against real episodes."""
    model: str = field(default="robodesk-push-red", metadata={"help": "shipped model name or folder"})
    data: Path = field(default=Path("results/experts/episodes/push_red_expert_noise_0.1"),
                       metadata={"help": "episode dataset not used in training"})
    context: int = field(default=2, metadata={"help": "real context frames"})
    horizon: int = field(default=4, metadata={"help": "imagined frames per episode (0: to the episode's end)"})
    episodes: int = field(default=10, metadata={"help": "episodes scored"})
    out: Path = field(default=Path("results/wm_rollout_eval"), metadata={"help": "output folder"})
    precision: Precision = field(default="float32", metadata={
        "help": "world-model compute (float32, bfloat16, auto): the quality check of the bfloat16 fast path"})
    seed: int = 0


def main(cfg: EvalConfig) -> None:
    sim = VideoSimulator.from_pretrained(cfg.model, dtype=resolve_dtype(cfg.precision))
    data = EpisodeDataset(cfg.data)
    push_red = data.info.get("env_id") == "vidit/PushRed-v0"
    rows = []
    for e in data.episodes[:cfg.episodes]:
        frames, actions = data.frames(e), data.actions(e)
        c = cfg.context
        h = min(cfg.horizon or len(actions), len(actions) - c + 1)
        pred = sim.rollout(frames[:c], actions[None, c - 1:c - 1 + h], past_actions=actions[:c - 1],
                           seed=cfg.seed)[0]
        real = frames[c:c + h]
        row = {"episode": e, **{f"psnr_step{i + 1}": round(psnr(pred[i], real[i]), 2) for i in range(h)}}
        if push_red:
            lit_real, lit_pred = red_light_lit(real), red_light_lit(pred)
            row.update(real_final_lit=bool(lit_real[-1]), pred_final_lit=bool(lit_pred[-1]),
                       final_agrees=bool(lit_real[-1] == lit_pred[-1]), real_any_lit=bool(lit_real.any()),
                       pred_any_lit=bool(lit_pred.any()))
        rows.append(row)
        strip = np.concatenate([np.concatenate(list(real), 1), np.concatenate(list(pred), 1)], 0)
        with atomic_path(cfg.out / f"episode_{e:03d}.png") as tmp:
            Image.fromarray(strip).save(tmp, format="png")
    keys = ["episode"] + [k for k in rows[0] if k != "episode"]
    keys += [k for r in rows for k in r if k not in keys]
    mean = {"episode": "mean", **{k: round(float(np.mean([r[k] for r in rows if k in r])), 2) for k in keys[1:]}}
    write_table(cfg.out, "wm_rollout_eval", rows + [mean], keys,
                {"config": {**asdict(cfg), "out": str(cfg.out), "data": str(cfg.data)}})
    print((cfg.out / "wm_rollout_eval.md").read_text())


def cli() -> None:
    run(main, EvalConfig)


if __name__ == "__main__":
    cli()
