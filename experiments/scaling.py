"""``scaling``: decoder size vs held-out loss, PSNR and probe accuracy on push_red (the paper's Figure 3).

    python -m experiments.scaling --out results/scaling --reuse small=robodesk-push-red --workers 2
    python -m experiments.scaling --quick

Every size (decoder presets ``nano`` 0.23 M, ``micro`` 1.05 M, ``small`` 5.25 M parameters) is trained on
the same push_red token shards with the shipped model's two-stage recipe (stage 1 on 8-frame clips, stage 2
on 16-frame clips from stage 1; same steps, batch and learning rates), or taken from ``--reuse SIZE=MODEL``
where a model was already trained that way (the shipped ``robodesk-push-red`` is ``small``). Each size is
scored by its trainer's held-out evaluation (loss, token accuracy, teacher-forced next-frame PSNR; same
split and clips for all) and by ``wm_eval`` on push_red held-out episodes: PSNR of 4 frames generated after
an in-class demo, and P-Acc with in-class, random and no demos (in-class minus random: how much the demo's
content matters). Training resumes from its checkpoints and evaluations are kept, so a rerun continues.
Writes ``scaling.{md,csv,json,png}``.
"""
from __future__ import annotations

import csv
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Optional

from experiments.tables import figure, weights_digest, write_table
from experiments.wm_eval import WMEvalConfig, evaluate
from vidit.cli import UsageError, config_json, run
from vidit.runs import claim_out
from worldmodel.decoder import PRESETS, Decoder
from worldmodel.simulator import resolve_model
from worldmodel.train_worldmodel import TrainConfig, train

SHARDS = tuple(Path("data/tokens") / f"push_red_{n}.npz" for n in ("expert_n01", "expert_n02", "random"))


@dataclass
class ScalingConfig:
    """Train decoders of several sizes on the same data; plot quality and probe accuracy against size."""
    out: Path = field(default=Path("results/scaling"), metadata={"help": "output folder"})
    sizes: tuple[str, ...] = field(default=("nano", "micro", "small"), metadata={"help": "decoder presets"})
    reuse: tuple[str, ...] = field(default=(), metadata={
        "help": "SIZE=MODEL: a world model already trained with this recipe (e.g. small=robodesk-push-red)"})
    data: tuple[Path, ...] = field(default=SHARDS, metadata={"help": "token shards (the shipped model's)"})
    tokenizer: Path = field(default=Path("worldmodel/models/robodesk-push-red/tokenizer"), metadata={"help": "their tokenizer"})
    stage1_steps: int = field(default=600, metadata={"help": "steps on 8-frame clips, lr 1e-3, warmup 50"})
    stage2_steps: int = field(default=100, metadata={"help": "steps on 16-frame clips, lr 5e-4, warmup 20"})
    batch_size: int = 8
    episodes: int = field(default=20, metadata={"help": "wm_eval query episodes per class"})
    probe_episodes: int = field(default=20, metadata={"help": "wm_eval demo/probe episodes per class"})
    workers: int = field(default=1, metadata={"help": "processes recording the held-out episodes"})
    threads: Optional[int] = field(default=None, metadata={"help": "torch CPU threads"})
    quick: bool = field(default=False, metadata={"help": "nano and micro, 3 + 2 steps, wm_eval --quick (CI-sized)"})

    def __post_init__(self):
        unknown = sorted(set(self.sizes) - set(PRESETS))
        if unknown:
            raise UsageError(f"unknown sizes {unknown}; decoder presets: {', '.join(PRESETS)}")
        missing = [str(p) for p in (*self.data, self.tokenizer) if not p.exists()]
        if missing:
            raise UsageError(f"not found: {', '.join(missing)} (run from the repository root, or pass --data and "
                             "--tokenizer)")
        bad = [r for r in self.reuse if r.partition("=")[0] not in self.sizes or not r.partition("=")[2]]
        if bad:
            raise UsageError(f"--reuse takes SIZE=MODEL with SIZE among --sizes, got {bad}")
        if self.quick:
            self.sizes = tuple(s for s in self.sizes if s in ("nano", "micro")) or ("nano",)
            self.reuse, self.stage1_steps, self.stage2_steps = (), 3, 2


def trained(cfg: ScalingConfig, size: str) -> Path:
    """The world model of ``size``: reused, or trained in two stages under ``--out/models`` (resuming)."""
    reuse = dict(r.split("=", 1) for r in cfg.reuse)
    if size in reuse:
        return resolve_model(reuse[size])
    base = TrainConfig(data=cfg.data, tokenizer=cfg.tokenizer, preset=size, batch_size=cfg.batch_size,
                       eval_clips=4 if cfg.quick else 32, threads=cfg.threads)
    stage1 = replace(base, out=cfg.out / "models" / f"{size}_clips8", clip_frames=8, max_steps=cfg.stage1_steps,
                     lr=1e-3, warmup=min(50, cfg.stage1_steps), eval_every=max(1, cfg.stage1_steps // 6))
    stage2 = replace(base, out=cfg.out / "models" / size, init=stage1.out, clip_frames=16,
                     max_steps=cfg.stage2_steps, lr=5e-4, warmup=min(20, cfg.stage2_steps), eval_every=cfg.stage2_steps)
    for stage in (stage1, stage2):
        if _last_log(stage.out).get("step") != stage.max_steps:
            train(stage)
    return stage2.out


def _last_log(model: Path) -> dict:
    """The last held-out evaluation in a world model's ``log.csv`` (empty if none)."""
    path = model / "log.csv"
    if not path.is_file():
        return {}
    with open(path) as f:
        rows = list(csv.DictReader(f))
    return {k: float(v) if k != "step" else int(v) for k, v in rows[-1].items() if v} if rows else {}


def main(cfg: ScalingConfig) -> list[dict]:
    for r in cfg.reuse:
        resolve_model(r.split("=", 1)[1])  # a wrong --reuse fails before --out is touched
    claim_out(cfg.out, {k: v for k, v in config_json(cfg).items()
                        if k not in ("out", "workers", "threads")}, frozenset({"sizes", "reuse"}))
    eval_cfg = WMEvalConfig(out=cfg.out / "eval", domains=("push_red",), episodes=cfg.episodes,
                            probe_episodes=cfg.probe_episodes, workers=cfg.workers, quick=cfg.quick)
    rows = []
    for size in cfg.sizes:
        model = trained(cfg, size)
        log = _last_log(model)
        ev = {r["setting"]: r for r in evaluate(replace(eval_cfg, push_red_model=str(model)), "push_red",
                                                ("none", "random", "in-class"), cfg.out / "eval" / "generated" / size)}
        params = sum(p.numel() for p in Decoder.from_pretrained(model / "decoder").parameters())
        rows.append({"size": size, "params_M": round(params / 1e6, 2), "model": str(model), "sha256": weights_digest(model),
                     "heldout_loss": round(log["heldout_loss"], 3), "token_acc": round(log["token_acc"], 3),
                     "tf_psnr": round(log["next_frame_psnr"], 2), "gen_psnr": ev["in-class"]["psnr"],
                     "p_acc_real": ev["real"]["p_acc"], "p_acc_none": ev["none"]["p_acc"],
                     "p_acc_random": ev["random"]["p_acc"], "p_acc_in_class": ev["in-class"]["p_acc"],
                     "in_class_minus_random": round(ev["in-class"]["p_acc"] - ev["random"]["p_acc"], 3)})
    rows.sort(key=lambda r: r["params_M"])
    keys = ["size", "params_M", "heldout_loss", "token_acc", "tf_psnr", "gen_psnr", "p_acc_real", "p_acc_none",
            "p_acc_random", "p_acc_in_class", "in_class_minus_random"]
    write_table(cfg.out, "scaling", rows, keys, {"config": config_json(cfg)})
    _plot(rows, cfg.out / "scaling.png")
    print((cfg.out / "scaling.md").read_text())
    return rows


def _plot(rows: list[dict], path: Path) -> None:
    panels = [("heldout_loss", "held-out loss"), ("gen_psnr", "PSNR, in-class demo (dB)"),
              ("p_acc_in_class", "P-Acc, in-class demo"), ("in_class_minus_random", "P-Acc in-class - random")]
    with figure(path, 1, len(panels), figsize=(3.3 * len(panels), 3)) as (fig, axes):
        x = [r["params_M"] for r in rows]
        for ax, (key, label) in zip(axes[0], panels):
            ax.plot(x, [r[key] for r in rows], "o-")
            for r in rows:
                ax.annotate(r["size"], (r["params_M"], r[key]), fontsize=7, textcoords="offset points", xytext=(3, 3))
            ax.set_xscale("log")
            ax.minorticks_off()
            ax.set_xticks(x, [f"{v:g}" for v in x])
            ax.set_xlabel("decoder parameters (M)")
            ax.set_title(label, fontsize=9)


def cli() -> None:
    run(main, ScalingConfig)


if __name__ == "__main__":
    cli()
