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

``--conditioned`` trains the demo-conditioned classifier on multi-task data (episodes recording
``task_success.<task>``, e.g. ``collect --env robodesk --task push_green``): each frame is paired with
the goal frame of a task T, the first frame showing T done in another episode of T (as a demo's last
frame shows it), and labelled with whether this frame's episode has done T (k steps later). Frames
of other tasks done are the negatives that make it read the demo.
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

from envs.dataset import EpisodeDataset
from vidit.cli import UsageError, run
from vidit.files import append_csv, write_json
from worldmodel import checkpoints
from worldmodel.classifier import ClassifierConfig, SuccessClassifier
from worldmodel.recon import load_tokenizer, reconstructions
from vidit.seeding import generator


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
    conditioned: bool = field(default=False, metadata={
        "help": "demo-conditioned: score each frame against a goal frame of each task (multi-task data)"})
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


def load_labelled(roots: tuple[Path, ...], lookahead: int = 0
                  ) -> tuple[list[np.ndarray], dict[str, list[np.ndarray]], dict[str, list[np.ndarray]], dict]:
    """Frames ``[T + 1, H, W, 3]`` of every episode; per task, labels ``[T + 1]`` of every episode (frame t:
    frame t + k's; ``""`` is each episode's own ``success``); per task, each episode's goal frame: the first
    that shows its task done (none for episodes of other tasks or without success)."""
    frames, labels, goals, info = [], {}, {}, None
    for root in roots:
        ds = EpisodeDataset(root)
        info = info or ds.info
        for e in tqdm(ds.episodes, desc=f"load {ds.root.name}", unit="ep", leave=False):
            steps, video = ds.steps(e), ds.frames(e)
            columns = {"": "success", **{c.removeprefix("task_success."): c for c in steps.column_names
                                         if c.startswith("task_success.")}}
            own = steps.column("task")[0].as_py() if "task" in steps.column_names else None
            for task, column in columns.items():
                now = np.concatenate([[False], steps.column(column).to_numpy(zero_copy_only=False)])
                labels.setdefault(task, [None] * len(frames)).append(
                    now[np.minimum(np.arange(len(now)) + lookahead, len(now) - 1)])
                first = np.flatnonzero(now)[:1]  # the press itself: a light shows only while its button is down
                goals.setdefault(task, [None] * len(frames)).append(video[first] if task == own else video[:0])
            frames.append(video)
    missing = [t for t, v in labels.items() if len(v) != len(frames) or any(x is None for x in v)]
    if missing:
        raise UsageError(f"datasets record different tasks ({', '.join(missing)} missing in some); "
                         "train on datasets of one env")
    return frames, labels, goals, info


def goal_frames(goals: dict[str, list[np.ndarray]], episodes: list[int]) -> dict[str, np.ndarray]:
    """Per task (those with any), the goal frames of ``episodes``."""
    out = {t: np.concatenate([g[e] for e in episodes]) for t, g in goals.items() if t}
    return {t: f for t, f in out.items() if len(f)}


@torch.no_grad()
def evaluate(model: SuccessClassifier, sources: dict[str, list[np.ndarray]], labels: dict[str, list[np.ndarray]],
             held: list[int], goals: dict[str, np.ndarray] | None = None) -> dict:
    """Held-out accuracy, overall and on successes / failures; conditioned: over (frame, task) pairs, each
    frame scored against one goal frame of every task."""
    pairs = [("", None)] if goals is None else [(t, g[len(g) // 2]) for t, g in sorted(goals.items())]
    out = {}
    for name, frames in sources.items():
        x = np.concatenate([frames[e] for e in held])
        y = np.concatenate([np.concatenate([labels[t][e] for e in held]) for t, _ in pairs])
        pred = np.concatenate([model.logits(x, goal) for _, goal in pairs]) > 0
        out[f"{name}_acc"] = float((pred == y).mean())
        out[f"{name}_acc_success"] = float((pred[y] == 1).mean()) if y.any() else math.nan
        out[f"{name}_acc_failure"] = float((pred[~y] == 0).mean()) if (~y).any() else math.nan
    return out


def train(cfg: TrainClassifierConfig) -> dict:
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    frames, labels, goals, info = load_labelled(cfg.data, cfg.lookahead)
    order = np.random.default_rng(cfg.seed).permutation(len(frames))
    n_held = max(1, int(len(frames) * cfg.holdout))
    held, train_eps = sorted(order[:n_held].tolist()), sorted(order[n_held:].tolist())
    cfg.out.mkdir(parents=True, exist_ok=True)
    sources = {"real": frames}
    if cfg.tokenizer is not None:
        sources["recon"] = reconstructions(load_tokenizer(cfg.tokenizer), frames, cfg.out / "reconstructions.npz")
    index = np.array([(e, t) for e in train_eps for t in range(len(frames[e]))])
    train_goals = held_goals = None
    if cfg.conditioned:
        train_goals, held_goals = goal_frames(goals, train_eps), goal_frames(goals, held)
        if len(train_goals) < 2 or set(held_goals) != set(train_goals):
            raise UsageError("--conditioned needs episodes of two or more tasks that record task_success, "
                             "with successes in both the training and the held-out episodes")
    tasks = sorted(train_goals) if cfg.conditioned else [""]
    positive = np.array([labels[t][e][i] for t in tasks for e, i in index])
    if positive.all() or not positive.any():
        raise UsageError("the training frames are all successes or all failures; the classifier needs both")

    torch.manual_seed(cfg.seed)
    model = SuccessClassifier(ClassifierConfig(frame_size=frames[0].shape[1], env_id=info.get("env_id"),
                                               lookahead=cfg.lookahead, conditioned=cfg.conditioned))
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=0.05)
    ckpt_path = cfg.out / "checkpoint.pt"
    step = checkpoints.resume(ckpt_path, cfg, model, opt)
    pos_weight = torch.tensor((~positive).sum() / positive.sum(), dtype=torch.float32)  # balance the classes
    metrics: dict = {}
    bar = tqdm(total=cfg.max_steps, initial=step, desc="train_classifier", unit="step")
    while step < cfg.max_steps:
        g = generator(cfg.seed, step)
        pick = index[torch.randint(len(index), (cfg.batch_size,), generator=g).numpy()]
        use_recon = (torch.rand(cfg.batch_size, generator=g) < cfg.recon_prob).numpy() & ("recon" in sources)
        x = torch.from_numpy(np.stack([sources["recon" if r else "real"][e][t] for (e, t), r in zip(pick, use_recon)]))
        task, goal = [""] * cfg.batch_size, None
        if cfg.conditioned:
            task = [tasks[k] for k in torch.randint(len(tasks), (cfg.batch_size,), generator=g).tolist()]
            u = torch.rand(cfg.batch_size, generator=g).numpy()
            goal = torch.from_numpy(np.stack([train_goals[k][int(v * len(train_goals[k]))] for k, v in zip(task, u)]))
        y = torch.tensor([labels[k][e][t] for k, (e, t) in zip(task, pick)], dtype=torch.float32)
        loss = F.binary_cross_entropy_with_logits(model(x, goal), y, pos_weight=pos_weight)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        step += 1
        bar.update()
        bar.set_postfix(loss=f"{loss.item():.3f}")
        if step % cfg.eval_every == 0 or step == cfg.max_steps:
            metrics = {"step": step, "train_loss": round(loss.item(), 4),
                       **{k: round(v, 4) for k, v in evaluate(model, sources, labels, held, held_goals).items()}}
            append_csv(cfg.out / "log.csv", metrics)
            bar.write(" ".join(f"{k}={v}" for k, v in metrics.items()))
            checkpoints.save(ckpt_path, cfg, step, model, opt)
            model.save_pretrained(cfg.out)
    bar.close()
    if not metrics:
        metrics = {"step": step, **evaluate(model, sources, labels, held, held_goals)}
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
