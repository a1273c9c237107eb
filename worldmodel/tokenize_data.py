"""Pre-tokenise episode datasets into id shards, so decoder training never runs the tokenizer.

A shard is one ``.npz`` (written atomically) per dataset:

- ``ids`` uint16 ``[sum(T_i + 1), h, w]`` and ``actions`` float32 ``[sum(T_i), A]`` (A = 0 without actions),
  the episodes concatenated in order;
- ``episodes`` int64 ``[E]`` (the source episode indices), ``frame_offsets`` / ``action_offsets`` int64 ``[E + 1]``;
- ``tasks`` str ``[E]`` (each episode's task, "" where none is recorded) and ``success_at`` int64 ``[E]``
  (the first frame that shows the task done, -1 if never), so training can pack clips by task;
- ``meta``: a JSON string with the tokenizer (fingerprint, config, frame size, grid, codebook size) and the
  source dataset (path, env id, fps, action space).

:func:`load_shard` returns per-episode arrays: ``ids[i]`` is ``[T_i + 1, h, w]``, ``actions[i]`` ``[T_i, A]``.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from envs.dataset import EpisodeDataset
from vidit.cli import UsageError, run
from vidit.files import atomic_path
from worldmodel.tokenizer import VQTokenizer

SHARD_VERSION = 1


@dataclass
class Shard:
    """The episodes of one tokenised dataset."""
    ids: list[np.ndarray]
    actions: list[np.ndarray]
    episodes: np.ndarray
    meta: dict[str, Any]
    tasks: np.ndarray
    success_at: np.ndarray


def tokenize_dataset(tokenizer: VQTokenizer, dataset_dir: str | os.PathLike, out_file: str | os.PathLike,
                     batch_size: int | None = None) -> Path:
    """Encode every complete episode of ``dataset_dir`` into the shard ``out_file``; returns its path."""
    if tokenizer.codebook_size > np.iinfo(np.uint16).max + 1:
        raise ValueError(f"codebook of {tokenizer.codebook_size} entries does not fit uint16 ids")
    data = EpisodeDataset(dataset_dir, cache_episodes=0)
    ids, actions, tasks, success_at = [], [], [], []
    for e in tqdm(data.episodes, desc=f"tokenize {data.root.name}", unit="ep"):
        ids.append(tokenizer.encode(data.frames(e)[None], batch_size=batch_size)[0].cpu().numpy().astype(np.uint16))
        actions.append(data.actions(e))
        task, first = episode_task(data, e)
        tasks.append(task)
        success_at.append(first)
    meta = {"version": SHARD_VERSION,
            "tokenizer": {"fingerprint": tokenizer.fingerprint(), "config": dict(tokenizer.model.config),
                          "frame_size": tokenizer.frame_size, "grid": list(tokenizer.grid),
                          "codebook_size": tokenizer.codebook_size},
            "dataset": {"path": str(data.root.resolve()), "env_id": data.info.get("env_id"), "fps": data.fps,
                        "action_space": data.info.get("action_space")}}
    out_file = Path(out_file)
    with atomic_path(out_file, suffix=".npz") as tmp:
        np.savez(tmp, ids=np.concatenate(ids), actions=np.concatenate(actions),
                 episodes=np.asarray(data.episodes, np.int64),
                 frame_offsets=np.cumsum([0] + [len(i) for i in ids]).astype(np.int64),
                 action_offsets=np.cumsum([0] + [len(a) for a in actions]).astype(np.int64),
                 tasks=np.asarray(tasks, dtype=str), success_at=np.asarray(success_at, np.int64),
                 meta=np.array(json.dumps(meta, default=str)))
    return out_file


def episode_task(data: EpisodeDataset, episode: int) -> tuple[str, int]:
    """An episode's task ("" if none) and the first frame showing it done (-1 if never): row ``t``'s
    success follows action ``t``, so it shows in frame ``t + 1``."""
    steps = data.steps(episode)
    names = steps.column_names
    task = steps.column("task")[0].as_py() if "task" in names else (data.info.get("collect") or {}).get("task") or ""
    if not task or "success" not in names:
        return task or "", -1
    done = np.flatnonzero(steps.column("success").to_numpy(zero_copy_only=False))
    return task, int(done[0]) + 1 if len(done) else -1


def load_shard(path: str | os.PathLike) -> Shard:
    """Read a shard written by :func:`tokenize_dataset`."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such token shard")
    with np.load(path) as z:
        meta = json.loads(str(z["meta"]))
        if meta.get("version", SHARD_VERSION) > SHARD_VERSION:
            raise ValueError(f"{path}: shard version {meta['version']} is newer than this vidit reads "
                             f"({SHARD_VERSION})")
        fo, ao = z["frame_offsets"], z["action_offsets"]
        ids = [z["ids"][a:b] for a, b in zip(fo[:-1], fo[1:])]
        actions = [z["actions"][a:b] for a, b in zip(ao[:-1], ao[1:])]
        n = len(z["episodes"])
        tasks = z["tasks"] if "tasks" in z.files else np.full(n, "")  # shards written before tasks were kept
        success_at = z["success_at"] if "success_at" in z.files else np.full(n, -1)
        return Shard(ids=ids, actions=actions, episodes=z["episodes"], meta=meta, tasks=tasks, success_at=success_at)


@dataclass
class TokenizeConfig:
    """Pre-tokenise episode datasets into one shard each: OUT/<dataset folder name>.npz."""
    tokenizer: Path = field(default=Path("runs/tokenizer"), metadata={"help": "tokenizer folder"})
    data: tuple[Path, ...] = field(default=(), metadata={"help": "episode dataset folders"})
    out: Path = field(default=Path("data/tokens"), metadata={"help": "folder for the shards"})
    batch_size: int = field(default=64, metadata={"help": "frames per encoder batch"})

    def __post_init__(self):
        self.data = tuple(Path(d) for d in self.data)
        if not self.data:
            raise UsageError("--data: give at least one episode dataset folder")
        names = [d.resolve().name for d in self.data]
        if len(set(names)) != len(names):
            raise UsageError(f"dataset folders share a name, so their shards would collide: {names}")
        if self.batch_size < 1:
            raise UsageError(f"--batch-size must be >= 1, got {self.batch_size}")


def main(cfg: TokenizeConfig) -> None:
    tok = VQTokenizer.from_pretrained(cfg.tokenizer)
    for d in cfg.data:
        path = tokenize_dataset(tok, d, cfg.out / f"{d.resolve().name}.npz", batch_size=cfg.batch_size)
        shard = load_shard(path)
        print(f"{path}: {len(shard.episodes)} episodes, {sum(len(i) for i in shard.ids)} frames of "
              f"{tok.grid[0]}x{tok.grid[1]} ids")


def cli() -> None:
    run(main, TokenizeConfig)


if __name__ == "__main__":
    cli()
