"""``train_classifier``: fit the success classifier on episode datasets.

    train_classifier --data data/push_red_expert_n01 data/push_red_random --tokenizer robodesk-push-red --out runs/clf

Frame ``t + 1`` of an episode is labelled with ``info["success"]`` after step ``t`` (frame 0: False);
with ``--lookahead k``, frame ``t`` takes the label of frame ``t + k`` (the episode's last beyond its end):
"succeeds within k steps", so on expert data the logit rises as the task nears success, which grades an
MPC cost where an exact success label is flat (no sample of a short horizon succeeds).
With ``--tokenizer``, half of each batch goes through the tokenizer first, so the classifier also
scores imagined frames; held-out accuracy (overall, on successful and on unsuccessful frames) is
reported on real frames and on reconstructions. Batches depend only on (seed, step): a resumed run
ends where an uninterrupted one does.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from envs.cli import UsageError, run
from envs.dataset import EpisodeDataset
from envs.files import append_csv, write_json
from worldmodel import checkpoints
from worldmodel.classifier import ClassifierConfig, SuccessClassifier
from worldmodel.recon import load_tokenizer, reconstructions


@dataclass
class TrainClassifierConfig:
    """Train a success classifier (frame -> success logit) on episode datasets."""
    data: tuple[Path, ...] = field(default=(), metadata={"help": "episode dataset folders"})
    out: Path = field(default=Path("runs/classifier"), metadata={"help": "output folder (resumes from its checkpoint)"})
    tokenizer: Optional[Path] = field(default=None, metadata={
        "help": "augment with reconstructions through this tokenizer (a tokenizer or world-model folder or name)"})
    recon_prob: float = field(default=0.5, metadata={"help": "fraction of each batch that is reconstructed"})
    lookahead: int = field(default=0, metadata={
        "help": "label frame t with success at frame t + k (0: success now, VP²'s classifier)"})
    batch_size: int = 64
    max_steps: int = field(default=1000, metadata={"help": "optimizer steps"})
    lr: float = 1e-3
    holdout: float = field(default=0.1, metadata={"help": "fraction of episodes held out"})
    eval_every: int = field(default=250, metadata={"help": "steps between evaluations and checkpoints"})
    seed: int = 0
    threads: Optional[int] = field(default=None, metadata={"help": "torch CPU threads"})

    def __post_init__(self):
        if not self.data:
            raise UsageError("give at least one episode dataset with --data")
        if min(self.batch_size, self.max_steps, self.eval_every) < 1 or self.lookahead < 0:
            raise UsageError("--batch-size, --max-steps and --eval-every must be >= 1 and --lookahead >= 0")
        if not 0 <= self.recon_prob <= 1 or not 0 < self.holdout < 1:
            raise UsageError("--recon-prob must lie in [0, 1] and --holdout in (0, 1)")


def load_labelled(roots: tuple[Path, ...], lookahead: int = 0) -> tuple[list[np.ndarray], list[np.ndarray], dict]:
    """Frames ``[T + 1, H, W, 3]`` and success labels ``[T + 1]`` of every episode (frame t: frame t + k's)."""
    frames, labels, info = [], [], None
    for root in roots:
        ds = EpisodeDataset(root)
        info = info or ds.info
        for e in tqdm(ds.episodes, desc=f"load {ds.root.name}", unit="ep", leave=False):
            frames.append(ds.frames(e))
            now = np.concatenate([[False], ds.steps(e).column("success").to_numpy()])
            labels.append(now[np.minimum(np.arange(len(now)) + lookahead, len(now) - 1)])
    return frames, labels, info


@torch.no_grad()
def evaluate(model: SuccessClassifier, sources: dict[str, list[np.ndarray]], labels: list[np.ndarray],
             held: list[int]) -> dict:
    y = np.concatenate([labels[e] for e in held])
    out = {}
    for name, frames in sources.items():
        pred = model.logits(np.concatenate([frames[e] for e in held])) > 0
        out[f"{name}_acc"] = float((pred == y).mean())
        out[f"{name}_acc_success"] = float((pred[y] == 1).mean()) if y.any() else math.nan
        out[f"{name}_acc_failure"] = float((pred[~y] == 0).mean()) if (~y).any() else math.nan
    return out


def train(cfg: TrainClassifierConfig) -> dict:
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    frames, labels, info = load_labelled(cfg.data, cfg.lookahead)
    order = np.random.default_rng(cfg.seed).permutation(len(frames))
    n_held = max(1, int(len(frames) * cfg.holdout))
    held, train_eps = sorted(order[:n_held].tolist()), sorted(order[n_held:].tolist())
    cfg.out.mkdir(parents=True, exist_ok=True)
    sources = {"real": frames}
    if cfg.tokenizer is not None:
        sources["recon"] = reconstructions(load_tokenizer(cfg.tokenizer), frames, cfg.out / "reconstructions.npz")
    index = np.array([(e, t) for e in train_eps for t in range(len(frames[e]))])
    positive = np.array([labels[e][t] for e, t in index])
    if positive.all() or not positive.any():
        raise UsageError("the training frames are all successes or all failures; the classifier needs both")

    torch.manual_seed(cfg.seed)
    model = SuccessClassifier(ClassifierConfig(frame_size=frames[0].shape[1], env_id=info.get("env_id"),
                                               lookahead=cfg.lookahead))
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=0.05)
    ckpt_path = cfg.out / "checkpoint.pt"
    step = checkpoints.resume(ckpt_path, cfg, model, opt)
    pos_weight = torch.tensor((~positive).sum() / positive.sum(), dtype=torch.float32)  # balance the classes
    metrics: dict = {}
    bar = tqdm(total=cfg.max_steps, initial=step, desc="train_classifier", unit="step")
    while step < cfg.max_steps:
        g = torch.Generator().manual_seed(cfg.seed * 1_000_003 + step)
        pick = index[torch.randint(len(index), (cfg.batch_size,), generator=g).numpy()]
        use_recon = (torch.rand(cfg.batch_size, generator=g) < cfg.recon_prob).numpy() & ("recon" in sources)
        x = torch.from_numpy(np.stack([sources["recon" if r else "real"][e][t] for (e, t), r in zip(pick, use_recon)]))
        y = torch.tensor([labels[e][t] for e, t in pick], dtype=torch.float32)
        loss = F.binary_cross_entropy_with_logits(model(x), y, pos_weight=pos_weight)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        step += 1
        bar.update()
        bar.set_postfix(loss=f"{loss.item():.3f}")
        if step % cfg.eval_every == 0 or step == cfg.max_steps:
            metrics = {"step": step, "train_loss": round(loss.item(), 4),
                       **{k: round(v, 4) for k, v in evaluate(model, sources, labels, held).items()}}
            append_csv(cfg.out / "log.csv", metrics)
            bar.write(" ".join(f"{k}={v}" for k, v in metrics.items()))
            checkpoints.save(ckpt_path, cfg, step, model, opt)
            model.save_pretrained(cfg.out)
    bar.close()
    if not metrics:
        metrics = {"step": step, **evaluate(model, sources, labels, held)}
    write_json(cfg.out / "metrics.json", {**metrics, "heldout_episodes": len(held), "config": checkpoints.identity(cfg)})
    return metrics


def main(cfg: TrainClassifierConfig) -> None:
    m = train(cfg)
    shown = ", ".join(f"{k} {v:.3f}" for k, v in m.items() if k.endswith("_acc"))
    print(f"{cfg.out}: step {m['step']}, held-out {shown}")


def cli() -> None:
    run(main, TrainClassifierConfig)


if __name__ == "__main__":
    cli()
