"""``train_tokenizer``: train a VQ frame tokenizer on episode datasets.

Frames of every complete episode are loaded into memory once (resized to the tokenizer's size); whole
episodes are held out for evaluation. The loss is L1 + MSE reconstruction plus the quantizer's
commitment/codebook loss; codebook entries no batch used for ``--restart-every`` steps are re-initialised
from recent encoder outputs (at step 1 this is a data-dependent initialisation of the whole codebook).
Each epoch logs the held-out PSNR and codebook usage to ``OUT/metrics.csv``.

``OUT/checkpoint.pt`` (model, optimizer, step, RNG and restart state, the episodes used) is written
atomically every ``--checkpoint-every`` steps and at each epoch's end. A rerun with the same settings
resumes from it, on the same episodes even if the datasets grew, and reaches the same weights as an
uninterrupted run. The trained tokenizer is saved to ``OUT`` with ``save_pretrained``.
"""
from __future__ import annotations

import csv
import io
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Optional

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from envs.dataset import EpisodeDataset
from envs.video import resize_center_crop
from vidit.cli import UsageError, run
from vidit.files import atomic_path, atomic_write_bytes
from vidit.runs import differences
from worldmodel.tokenizer import PRESETS, VQTokenizer
from vidit.seeding import generator

CHECKPOINT = "checkpoint.pt"
METRICS = "metrics.csv"
COLUMNS = ("step", "epoch", "train_loss", "heldout_psnr", "codebook_usage", "codes_restarted", "elapsed_s")
# Settings a resumed run must share with the checkpoint (the rest only say how long to run or how to log).
_IDENTITY = ("data", "preset", "init", "frame_size", "batch_size", "lr", "weight_decay", "commit_weight", "heldout",
             "frame_stride", "restart_every", "seed")


@dataclass
class TrainTokenizerConfig:
    """Train a VQ frame tokenizer (diffusers VQModel) on episode datasets."""
    data: tuple[Path, ...] = field(default=(), metadata={"help": "episode dataset folders"})
    out: Path = field(default=Path("runs/tokenizer"), metadata={"help": "output folder (checkpoint, log, tokenizer)"})
    preset: str = field(default="f8", metadata={"help": "tokenizer size", "choices": list(PRESETS)})
    init: Optional[Path] = field(default=None, metadata={
        "help": "fine-tune this tokenizer folder (its codes kept; only codes the data leaves unused restart)"})
    frame_size: int = field(default=64, metadata={"help": "frames are resized + center-cropped to this size"})
    epochs: int = field(default=20, metadata={"help": "passes over the training frames"})
    max_steps: Optional[int] = field(default=None, metadata={"help": "stop after this many steps in all"})
    batch_size: int = field(default=32, metadata={"help": "frames per step"})
    lr: float = field(default=1e-3, metadata={"help": "AdamW learning rate"})
    weight_decay: float = field(default=0.01, metadata={"help": "AdamW weight decay (not on the codebook)"})
    commit_weight: float = field(default=1.0, metadata={"help": "weight of the quantizer loss"})
    heldout: float = field(default=0.1, metadata={"help": "fraction of episodes held out for evaluation"})
    frame_stride: int = field(default=1, metadata={"help": "use every k-th frame of each episode"})
    restart_every: int = field(default=25, metadata={"help": "steps after which unused codes are re-initialised"})
    checkpoint_every: int = field(default=100, metadata={"help": "steps between checkpoints"})
    eval_frames: int = field(default=512, metadata={"help": "held-out frames scored each epoch"})
    seed: int = field(default=0, metadata={"help": "seeds the split, initialisation, batch order and restarts"})
    resume: bool = field(default=True, metadata={"help": "resume from OUT/checkpoint.pt when it exists"})
    threads: Optional[int] = field(default=None, metadata={
        "help": "torch CPU threads (default: torch's choice); 1 is fastest on a busy shared machine"})

    def __post_init__(self):
        self.data = tuple(Path(d) for d in self.data)
        if not self.data:
            raise UsageError("--data: give at least one episode dataset folder")
        for name in ("frame_size", "epochs", "batch_size", "frame_stride", "restart_every", "checkpoint_every",
                     "eval_frames"):
            if getattr(self, name) < 1:
                raise UsageError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(self, name)}")
        if self.max_steps is not None and self.max_steps < 1:
            raise UsageError(f"--max-steps must be >= 1, got {self.max_steps}")
        if not 0 < self.heldout < 1:
            raise UsageError(f"--heldout must be in (0, 1), got {self.heldout}")
        if self.threads is not None and self.threads < 1:
            raise UsageError(f"--threads must be >= 1, got {self.threads}")
        if self.lr <= 0:
            raise UsageError(f"--lr must be > 0, got {self.lr}")

    def identity(self) -> dict[str, Any]:
        d = asdict(self)
        return {k: [str(p) for p in d[k]] if k == "data" else (None if d[k] is None else str(d[k])) if k == "init"
                else d[k] for k in _IDENTITY}


def load_frames(cfg: TrainTokenizerConfig, episodes: list[list[int]] | None = None
                ) -> tuple[np.ndarray, np.ndarray, list[list[int]]]:
    """(train, held-out) uint8 frames ``[N, S, S, 3]``, split by whole episodes, and the episodes used.

    ``episodes`` (one list per dataset) pins the episodes of a resumed run, so datasets that grew since
    do not change its split; by default every complete episode is used.
    """
    datasets = [EpisodeDataset(d, cache_episodes=0) for d in cfg.data]
    episodes = episodes or [ds.episodes for ds in datasets]
    for ds, eps in zip(datasets, episodes):
        if set(eps) - set(ds.episodes):
            raise UsageError(f"{ds.root}: episodes {sorted(set(eps) - set(ds.episodes))[:5]} of the run are missing")
    pairs = [(ds, e) for ds, eps in zip(datasets, episodes) for e in eps]
    if len(pairs) < 2:
        raise UsageError(f"need >= 2 complete episodes to hold one out, found {len(pairs)}")
    order = np.random.default_rng(cfg.seed).permutation(len(pairs))
    held = set(order[:max(1, round(cfg.heldout * len(pairs)))].tolist())
    train, test = [], []
    for i, (ds, e) in enumerate(tqdm(pairs, desc="load frames", unit="ep", leave=False)):
        frames = resize_center_crop(ds.frames(e)[::cfg.frame_stride], cfg.frame_size)
        (test if i in held else train).append(frames)
    return np.concatenate(train), np.concatenate(test), [list(eps) for eps in episodes]


class CodeRestarter:
    """Counts code use and re-initialises codes unused since the last check from recent encoder outputs."""

    def __init__(self, codebook_size: int, seed: int, keep: int = 4096):
        self.counts = torch.zeros(codebook_size, dtype=torch.long)
        self.recent: torch.Tensor | None = None
        self.keep = keep
        self.generator = torch.Generator().manual_seed(seed)

    def observe(self, ids: torch.Tensor, latents: torch.Tensor) -> None:
        self.counts += torch.bincount(ids.reshape(-1).cpu(), minlength=len(self.counts))
        vectors = latents.detach().permute(0, 2, 3, 1).reshape(-1, latents.shape[1]).cpu()
        self.recent = vectors if self.recent is None else torch.cat([self.recent, vectors])[-self.keep:]

    @torch.no_grad()
    def restart(self, codebook: torch.nn.Parameter, optimizer: torch.optim.Optimizer) -> int:
        """Re-initialise the unused codes (and their Adam moments); returns how many."""
        dead = (self.counts == 0).nonzero().squeeze(1)
        self.counts.zero_()
        if not len(dead) or self.recent is None:
            return 0
        pick = torch.randint(len(self.recent), (len(dead),), generator=self.generator)
        noise = torch.randn(len(dead), self.recent.shape[1], generator=self.generator) * self.recent.std() * 0.01
        codebook[dead.to(codebook.device)] = (self.recent[pick] + noise).to(codebook)
        for moment in optimizer.state.get(codebook, {}).values():
            if moment.shape == codebook.shape:
                moment[dead.to(moment.device)] = 0
        return len(dead)

    def state_dict(self) -> dict[str, Any]:
        return {"counts": self.counts, "recent": self.recent, "generator": self.generator.get_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.counts, self.recent = state["counts"], state["recent"]
        self.generator.set_state(state["generator"])


def psnr(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per-frame PSNR (dB) of uint8 frames ``[N, H, W, 3]``."""
    mse = (a.float() - b.float()).pow(2).flatten(1).mean(1).clamp_min(1e-10)
    return 10 * torch.log10(255.0 ** 2 / mse)


def evaluate(tok: VQTokenizer, frames: np.ndarray, n: int) -> tuple[float, float]:
    """(mean PSNR, fraction of the codebook used) on ``n`` evenly spaced frames."""
    frames = frames[np.linspace(0, len(frames) - 1, min(n, len(frames))).astype(int)]
    tok.model.eval()
    ids = tok.encode(frames[None])
    recon = tok.decode(ids)[0].cpu()
    tok.model.train()
    usage = len(torch.unique(ids)) / tok.codebook_size
    return psnr(recon, torch.from_numpy(frames)).mean().item(), usage


def _train_step(tok: VQTokenizer, optimizer: torch.optim.Optimizer, x: torch.Tensor, commit_weight: float
                ) -> tuple[float, torch.Tensor, torch.Tensor]:
    """One AdamW step on pixels ``x``; returns (loss, ids, encoder latents)."""
    recon, q_loss, ids, latents = tok.reconstruct(x)
    loss = F.l1_loss(recon, x) + F.mse_loss(recon, x) + commit_weight * q_loss
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return loss.item(), ids, latents


def _batch_order(seed: int, epoch: int, n: int) -> torch.Tensor:
    return torch.randperm(n, generator=generator(seed, epoch))


def _save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def _trim_log(path: Path, step: int) -> None:
    """Drop log rows written after the checkpoint a run resumes from."""
    if path.is_file():
        rows = [r for r in csv.DictReader(path.open()) if int(r["step"]) <= step]
        buf = io.StringIO()
        writer = csv.DictWriter(buf, COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
        atomic_write_bytes(path, buf.getvalue().encode())


def _log(path: Path, row: dict[str, Any]) -> None:
    new = not path.is_file()
    with path.open("a", newline="") as f:
        writer = csv.DictWriter(f, COLUMNS)
        if new:
            writer.writeheader()
        writer.writerow(row)


def _checkpoint(cfg: TrainTokenizerConfig) -> dict[str, Any] | None:
    """The checkpoint to resume from, checked against ``cfg``; None for a fresh run."""
    path = cfg.out / CHECKPOINT
    if not (cfg.resume and path.is_file()):
        return None
    state = torch.load(path, weights_only=False)
    if differ := differences(state["config"], cfg.identity(), only=_IDENTITY):
        raise UsageError(f"{path} was trained differently ({'; '.join(differ)}); use another --out or --no-resume")
    return state


def _init_from(tok: VQTokenizer, init: Path) -> None:
    """Copy the weights of a trained tokenizer of the same preset and frame size into ``tok``."""
    src = VQTokenizer.from_pretrained(init)
    shapes = {k: v.shape for k, v in src.model.state_dict().items()}
    if src.frame_size != tok.frame_size or shapes != {k: v.shape for k, v in tok.model.state_dict().items()}:
        raise UsageError(f"--init {init}: not a tokenizer of this preset and frame size")
    tok.model.load_state_dict(src.model.state_dict())


def train(cfg: TrainTokenizerConfig) -> dict[str, Any]:
    """Train (or resume) a tokenizer into ``cfg.out``; returns the final metrics."""
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    cfg.out.mkdir(parents=True, exist_ok=True)
    ckpt_path, log_path = cfg.out / CHECKPOINT, cfg.out / METRICS
    state = _checkpoint(cfg)
    train_frames, test_frames, episodes = load_frames(cfg, state and state["episodes"])

    torch.manual_seed(cfg.seed)
    tok = VQTokenizer.from_preset(cfg.preset, cfg.frame_size)
    if cfg.init is not None:
        _init_from(tok, cfg.init)
    model = tok.model.train()
    codebook = model.quantize.embedding.weight
    decay = [p for p in model.parameters() if p.ndim > 1 and p is not codebook]
    rest = [p for p in model.parameters() if p.ndim <= 1 or p is codebook]
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": cfg.weight_decay},
                                   {"params": rest, "weight_decay": 0.0}], lr=cfg.lr)
    restarter = CodeRestarter(tok.codebook_size, cfg.seed)
    step, elapsed = 0, 0.0
    tally = {"loss": 0.0, "steps": 0, "restarted": 0}  # since the last log row
    if state:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        restarter.load_state_dict(state["restarter"])
        torch.set_rng_state(state["torch_rng"])
        step, elapsed, tally = state["step"], state["elapsed"], state["tally"]
        _trim_log(log_path, step)
    elif log_path.is_file():
        log_path.unlink()

    per_epoch = max(1, len(train_frames) // cfg.batch_size)
    total = min(cfg.epochs * per_epoch, cfg.max_steps or math.inf)
    metrics: dict[str, Any] = {"params": tok.num_parameters(), "tokens_per_frame": tok.tokens_per_frame,
                               "train_frames": len(train_frames), "heldout_frames": len(test_frames), "losses": []}
    run_time = 0.0
    bar = tqdm(total=total, initial=step, desc=f"train_tokenizer {cfg.preset}", unit="step")
    while step < total:
        epoch, pos = divmod(step, per_epoch)
        index = _batch_order(cfg.seed, epoch, len(train_frames))[pos * cfg.batch_size:(pos + 1) * cfg.batch_size]
        start = time.perf_counter()
        loss, ids, latents = _train_step(tok, optimizer, tok.pixels(train_frames[index.numpy()]), cfg.commit_weight)
        step += 1
        restarter.observe(ids, latents)
        if (step == 1 and cfg.init is None) or step % cfg.restart_every == 0:
            tally["restarted"] += restarter.restart(codebook, optimizer)
        took = time.perf_counter() - start
        run_time, elapsed = run_time + took, elapsed + took
        tally["loss"] += loss
        tally["steps"] += 1
        metrics["losses"].append(loss)
        bar.update()
        bar.set_postfix(loss=f"{loss:.4f}")

        if step % per_epoch == 0 or step == total:
            value, usage = evaluate(tok, test_frames, cfg.eval_frames)
            _log(log_path, {"step": step, "epoch": round(step / per_epoch, 3),
                            "train_loss": round(tally["loss"] / tally["steps"], 6), "heldout_psnr": round(value, 3),
                            "codebook_usage": round(usage, 4), "codes_restarted": tally["restarted"],
                            "elapsed_s": round(elapsed, 2)})
            bar.write(f"step {step} (epoch {step / per_epoch:.2f}): held-out PSNR {value:.2f} dB, "
                      f"codebook usage {usage:.1%}")
            metrics.update(heldout_psnr=value, codebook_usage=usage, train_loss=tally["loss"] / tally["steps"])
            tally = {"loss": 0.0, "steps": 0, "restarted": 0}
        if step % cfg.checkpoint_every == 0 or step % per_epoch == 0 or step == total:
            _save_checkpoint(ckpt_path, {"config": cfg.identity(), "episodes": episodes, "step": step,
                                         "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                                         "restarter": restarter.state_dict(), "torch_rng": torch.get_rng_state(),
                                         "elapsed": elapsed, "tally": tally})
    bar.close()
    if "heldout_psnr" not in metrics:  # resumed a finished run: score it once more
        metrics["heldout_psnr"], metrics["codebook_usage"] = evaluate(tok, test_frames, cfg.eval_frames)
    tok.model.eval()
    tok.save_pretrained(cfg.out)
    ran = len(metrics["losses"])
    metrics.update(step=step, s_per_step=run_time / ran if ran else None)
    return metrics


def main(cfg: TrainTokenizerConfig) -> None:
    m = train(cfg)
    print(f"{cfg.out}: {cfg.preset} tokenizer, {m['params']:,} params, {m['tokens_per_frame']} ids/frame, "
          f"step {m['step']}, held-out PSNR {m['heldout_psnr']:.2f} dB, codebook usage {m['codebook_usage']:.1%}")


def cli() -> None:
    run(main, TrainTokenizerConfig)


if __name__ == "__main__":
    cli()
