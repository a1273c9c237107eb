"""``train_idm``: fit the inverse-dynamics model on episode datasets.

    train_idm --data data/push_red_expert_n01 data/push_red_random --tokenizer robodesk-push-red --out runs/idm

The IDM must read actions off *imagined* frames, so with ``--tokenizer`` (a tokenizer folder, or a
world model folder or shipped name) each training window is, with probability ``--recon-prob``,
replaced by its tokenizer reconstruction: what the world model's frames look like. Reconstructions
are computed once and cached in the output folder. Held-out metrics are reported on real and on
reconstructed frames: R^2 per action component for continuous spaces; for discrete ones accuracy,
also on the transitions where the frame changed (an action with no visible effect cannot be read).
A batch depends only on (seed, step), so a resumed run ends where an uninterrupted one does.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np
import torch
from tqdm import tqdm

from envs.dataset import EpisodeDataset
from idm.model import IDMConfig, InverseDynamics
from vidit.cli import UsageError, run
from vidit.files import append_csv, write_json
from worldmodel import checkpoints
from worldmodel.recon import load_tokenizer, reconstructions
from vidit.seeding import generator

CHANGED_PIXELS = 4  # pixels moving by > 32 levels that make a transition count as "changed the frame"


@dataclass
class TrainIDMConfig:
    """Train an inverse-dynamics model (frames -> actions) on episode datasets."""
    data: tuple[Path, ...] = field(default=(), metadata={"help": "episode dataset folders (same env and action space)"})
    out: Path = field(default=Path("runs/idm"), metadata={"help": "output IDM folder (resumes if it holds a checkpoint)"})
    tokenizer: Optional[Path] = field(default=None, metadata={
        "help": "augment with reconstructions through this tokenizer (a tokenizer or world-model folder, or a "
                "shipped world-model name); none: real frames only"})
    recon_prob: float = field(default=0.5, metadata={"help": "probability a training window is a reconstruction"})
    window: int = field(default=8, metadata={"help": "frames per window (the IDM sees them all)"})
    batch_size: int = field(default=32, metadata={"help": "windows per step"})
    max_steps: int = field(default=2000, metadata={"help": "optimizer steps"})
    lr: float = field(default=1e-3, metadata={"help": "peak learning rate"})
    warmup: int = field(default=100, metadata={"help": "linear warmup steps, then lr * sqrt(warmup / step)"})
    weight_decay: float = 0.05
    holdout: float = field(default=0.1, metadata={"help": "fraction of episodes held out for evaluation"})
    eval_every: int = field(default=250, metadata={"help": "steps between evaluations and checkpoints"})
    seed: int = 0
    threads: Optional[int] = field(default=None, metadata={"help": "torch CPU threads (default: torch's choice)"})

    def __post_init__(self):
        if not self.data:
            raise UsageError("give at least one episode dataset with --data")
        for name in ("window", "batch_size", "max_steps", "warmup", "eval_every"):
            if getattr(self, name) < (2 if name == "window" else 1):
                raise UsageError(f"--{name.replace('_', '-')} must be >= {2 if name == 'window' else 1}, "
                                 f"got {getattr(self, name)}")
        if not 0 <= self.recon_prob <= 1 or not 0 < self.holdout < 1:
            raise UsageError("--recon-prob must lie in [0, 1] and --holdout in (0, 1)")
        if self.threads is not None and self.threads < 1:
            raise UsageError(f"--threads must be >= 1, got {self.threads}")


# -- data -------------------------------------------------------------------------------------
class WindowData:
    """All frames and actions of some datasets in memory, with window sampling for training."""

    def __init__(self, roots: tuple[Path, ...], window: int):
        sets = [EpisodeDataset(r) for r in roots]
        spaces = {str(s.info.get("action_space")) for s in sets}
        if len(spaces) > 1:
            raise UsageError(f"datasets have different action spaces: {sorted(spaces)}")
        self.info = sets[0].info
        if not self.info.get("action_space"):
            raise UsageError(f"{roots[0]} has no actions (imported videos?); the IDM learns from recorded actions")
        self.frames, self.actions = [], []
        for ds in sets:
            for e in tqdm(ds.episodes, desc=f"load {ds.root.name}", unit="ep", leave=False):
                if ds.length(e) + 1 >= window:
                    self.frames.append(ds.frames(e))
                    self.actions.append(ds.actions(e))
        if not self.frames:
            raise UsageError(f"no episode has the {window} frames a window needs")
        self.window = window

    def split(self, holdout: float, seed: int) -> tuple[list[int], list[int]]:
        order = np.random.default_rng(seed).permutation(len(self.frames))
        n = max(1, int(len(order) * holdout))
        return sorted(order[n:].tolist()), sorted(order[:n].tolist())

    def sample(self, episodes: list[int], n: int, g: torch.Generator, recon: list[np.ndarray] | None,
               recon_prob: float) -> tuple[torch.Tensor, torch.Tensor]:
        pick = torch.randint(len(episodes), (n,), generator=g).tolist()
        u = torch.rand(n, generator=g).tolist()
        frames, actions = [], []
        for i, r in zip(pick, u):
            e = episodes[i]
            start = int(torch.randint(len(self.frames[e]) - self.window + 1, (1,), generator=g))
            source = recon if recon is not None and r < recon_prob else self.frames
            frames.append(source[e][start:start + self.window])
            actions.append(self.actions[e][start:start + self.window - 1])
        return torch.from_numpy(np.stack(frames)), torch.from_numpy(np.stack(actions))

    def fixed(self, episodes: list[int]) -> list[tuple[int, int]]:
        """Non-overlapping windows of the held-out episodes, in order."""
        return [(e, s) for e in episodes for s in range(0, len(self.frames[e]) - self.window + 1, self.window - 1)]


# -- evaluation -------------------------------------------------------------------------------
@torch.no_grad()
def evaluate(model: InverseDynamics, data: WindowData, episodes: list[int], recon: list[np.ndarray] | None) -> dict:
    """Held-out metrics on real frames, and on reconstructions when there are any."""
    index = data.fixed(episodes)
    truth = np.concatenate([data.actions[e][s:s + data.window - 1] for e, s in index])
    real = [data.frames[e][s:s + data.window] for e, s in index]
    changed = np.concatenate([(np.abs(np.diff(w.astype(np.int16), axis=0)) > 32).any(-1).sum((1, 2)) >= CHANGED_PIXELS
                              for w in real])
    out = {}
    for name, source in (("real", data.frames), ("recon", recon)):
        if source is None:
            continue
        windows = np.stack([source[e][s:s + data.window] for e, s in index])
        pred = np.concatenate([model.predict(windows[i:i + 64])[0].reshape(-1, model.action_dim)
                               for i in range(0, len(windows), 64)])
        out.update({f"{name}_{k}": v for k, v in action_metrics(model.config.action_space, pred, truth, changed).items()})
    return out


def action_metrics(space: dict, pred: np.ndarray, truth: np.ndarray, changed: np.ndarray) -> dict:
    """R^2 per component (box) or accuracy overall and on changed transitions (discrete)."""
    if space["type"] == "box":
        var = truth.var(0)
        r2 = 1 - ((pred - truth) ** 2).mean(0) / np.where(var > 0, var, 1)
        return {"r2_mean": float(r2.mean()), **{f"r2_{i}": float(v) for i, v in enumerate(r2)}}
    hit = (np.round(pred) == np.round(truth)).all(-1)
    return {"acc": float(hit.mean()), "acc_changed": float(hit[changed].mean()) if changed.any() else math.nan,
            "changed_frac": float(changed.mean())}


# -- the run ----------------------------------------------------------------------------------
def lr_at(step: int, cfg: TrainIDMConfig) -> float:
    """Linear warmup, then inverse-square-root decay: independent of --max-steps, so a run can be extended."""
    return cfg.lr * min((step + 1) / cfg.warmup, math.sqrt(cfg.warmup / (step + 1)))


def train(cfg: TrainIDMConfig) -> dict:
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    data = WindowData(cfg.data, cfg.window)
    train_eps, held_eps = data.split(cfg.holdout, cfg.seed)
    frame_size = data.frames[0].shape[1]
    cfg.out.mkdir(parents=True, exist_ok=True)
    recon = None
    if cfg.tokenizer is not None:
        tok = load_tokenizer(cfg.tokenizer)
        if tok.frame_size != frame_size:
            raise UsageError(f"tokenizer {cfg.tokenizer} works on {tok.frame_size}px frames; the data has {frame_size}px")
        recon = reconstructions(tok, data.frames, cfg.out / "reconstructions.npz")

    torch.manual_seed(cfg.seed)
    model = InverseDynamics(IDMConfig(data.info["action_space"], frame_size=frame_size, window=cfg.window,
                                      env_id=data.info.get("env_id")))
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    ckpt_path = cfg.out / "checkpoint.pt"
    step = checkpoints.resume(ckpt_path, cfg, model, opt)
    metrics: dict = {}
    bar = tqdm(total=cfg.max_steps, initial=step, desc="train_idm", unit="step")
    t0 = time.perf_counter()
    while step < cfg.max_steps:
        g = generator(cfg.seed, step)
        frames, actions = data.sample(train_eps, cfg.batch_size, g, recon, cfg.recon_prob)
        for group in opt.param_groups:
            group["lr"] = lr_at(step, cfg)
        loss = model.loss(frames, actions)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1
        bar.update()
        bar.set_postfix(loss=f"{loss.item():.3f}")
        if step % cfg.eval_every == 0 or step == cfg.max_steps:
            metrics = {"step": step, "train_loss": round(loss.item(), 4),
                       "seconds": round(time.perf_counter() - t0, 1),
                       **{k: round(v, 4) for k, v in evaluate(model, data, held_eps, recon).items()}}
            append_csv(cfg.out / "log.csv", metrics)
            bar.write(" ".join(f"{k}={v}" for k, v in metrics.items()))
            checkpoints.save(ckpt_path, cfg, step, model, opt)
            model.save_pretrained(cfg.out)
    bar.close()
    if not metrics:  # resumed a finished run
        metrics = {"step": step, **evaluate(model, data, held_eps, recon)}
    write_json(cfg.out / "metrics.json", {**metrics, "params": sum(p.numel() for p in model.parameters()),
                                          "train_episodes": len(train_eps), "heldout_episodes": len(held_eps),
                                          "config": checkpoints.identity(cfg)})
    return metrics


def main(cfg: TrainIDMConfig) -> None:
    m = train(cfg)
    shown = {k: v for k, v in m.items() if k.endswith(("r2_mean", "acc", "acc_changed"))}
    print(f"{cfg.out}: step {m['step']}, " + ", ".join(f"held-out {k} {v:.3f}" for k, v in shown.items()))


def cli() -> None:
    run(main, TrainIDMConfig)


if __name__ == "__main__":
    cli()
