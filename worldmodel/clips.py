"""Training clips from token shards: VidIT's single clips (:class:`ClipSampler`) and demo + query pairs
of one task (:class:`PackedSampler`), both drawn from a ``torch.Generator`` so a batch depends only on
its seed."""
from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch

from vidit.cli import UsageError
from worldmodel.tokenize_data import load_shard


class Episode(NamedTuple):
    ids: np.ndarray         # [T + 1, h, w]
    actions: np.ndarray     # [T, A]
    task: str               # "" where none is recorded
    success_at: int         # first frame showing the task done, -1 if never


class ClipSampler:
    """Clips of ``frames`` token frames (and their actions) drawn from shard episodes."""

    def __init__(self, episodes: list[Episode], frames: int, stride: int):
        span = (frames - 1) * stride + 1
        self.episodes = [e for e in episodes if len(e[0]) >= span]
        if not self.episodes:
            raise UsageError(f"no episode has the {span} frames a clip of {frames} frames at stride {stride} needs")
        self.frames, self.stride, self.span = frames, stride, span
        self.starts = np.array([len(e.ids) - span + 1 for e in self.episodes])

    def sample(self, n: int, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """``n`` clips: ids ``[n, frames, h, w]`` and the raw actions taken on their frames ``[n, frames - 1, A]``."""
        ep = torch.randint(len(self.episodes), (n,), generator=g).numpy()
        u = torch.rand(n, generator=g).numpy()
        return self._gather(ep, (u * self.starts[ep]).astype(int))

    def fixed(self, n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.sample(n, torch.Generator().manual_seed(seed))

    def _gather(self, ep: np.ndarray, start: np.ndarray, frames: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        ids, acts = [], []
        for e, s in zip(ep, start):
            episode = self.episodes[e]
            idx = s + self.stride * np.arange(frames or self.frames)
            ids.append(episode.ids[idx].astype(np.int64))
            acts.append(episode.actions[idx[:-1]])  # the action taken on each clip frame (stride > 1: the first of the gap)
        return torch.from_numpy(np.stack(ids)), torch.from_numpy(np.stack(acts))


class PackedSampler(ClipSampler):
    """Demo + query pairs of one task from two different episodes, as the sampler prompts at inference:
    the demo is ``demo_frames`` frames of an episode ending at or after its success (it shows the task
    done), the query ``frames - demo_frames`` frames of another episode of that task from a random start.
    ``sample`` returns (demo ids, demo actions, query ids, query actions)."""

    def __init__(self, episodes: list[Episode], frames: int, stride: int, demo_frames: int):
        super().__init__(episodes, frames, stride)
        self.demo_frames, self.query_frames = demo_frames, frames - demo_frames
        by_task: dict[str, list[int]] = {}
        for i, e in enumerate(self.episodes):
            if e.task:
                by_task.setdefault(e.task, []).append(i)
        self.tasks = sorted(t for t, members in by_task.items()
                            if len(members) >= 2 and any(self._demo_ok(i) for i in members))
        if not self.tasks:
            raise UsageError("--pack same-task needs shards whose episodes record a task (collect with --task, "
                             "then tokenize_data), two or more episodes per task and a success to show")
        self.members = {t: np.array(by_task[t]) for t in self.tasks}
        self.demos = {t: np.array([i for i in by_task[t] if self._demo_ok(i)]) for t in self.tasks}

    def _demo_ok(self, i: int) -> bool:
        e, span = self.episodes[i], (self.demo_frames - 1) * self.stride + 1
        return 0 <= e.success_at and len(e.ids) >= span

    def sample(self, n: int, g: torch.Generator, other_task: bool = False):
        """``other_task``: each demo from a task other than its query's (the contrastive control)."""
        if other_task and len(self.tasks) < 2:
            raise ValueError("a contrastive demo needs two or more tasks")
        task = torch.randint(len(self.tasks), (n,), generator=g).numpy()
        u = torch.rand(n, 5, generator=g).numpy()
        shift = 1 + (u[:, 4] * (len(self.tasks) - 1)).astype(int) if other_task else 0
        span_d, span_q = (self.demo_frames - 1) * self.stride, (self.query_frames - 1) * self.stride
        demo_ep, demo_start, query_ep, query_start = [], [], [], []
        for k, dk, (a, b, c, d, _) in zip(task, (task + shift) % len(self.tasks), u):
            demos, members = self.demos[self.tasks[dk]], self.members[self.tasks[k]]
            demo = demos[int(a * len(demos))]
            members = members[members != demo]  # the query comes from another episode
            query = members[int(b * len(members))]
            e = self.episodes[demo]
            first_end = max(e.success_at, span_d)  # the window's last frame shows the task done
            demo_start.append(first_end + int(c * (len(e.ids) - first_end)) - span_d)
            demo_ep.append(demo)
            query_ep.append(query)
            query_start.append(int(d * (len(self.episodes[query].ids) - span_q)))
        d_ids, d_act = self._gather(np.array(demo_ep), np.array(demo_start), self.demo_frames)
        q_ids, q_act = self._gather(np.array(query_ep), np.array(query_start), self.query_frames)
        return d_ids, d_act, q_ids, q_act


def load_episodes(paths: tuple[Path, ...]) -> tuple[list[Episode], dict]:
    """Episodes (ids, raw actions) of every shard, and the shards' common metadata."""
    episodes, meta = [], None
    for p in paths:
        shard = load_shard(p)
        tok, data = shard.meta["tokenizer"], shard.meta["dataset"]
        m = {"codebook_size": tok["codebook_size"], "grid": tuple(tok["grid"]), "frame_size": tok["frame_size"],
             "fingerprint": tok["fingerprint"], "action_space": data["action_space"], "fps": data["fps"],
             "env_id": data["env_id"]}
        if meta is not None and (m["fingerprint"], m["action_space"]) != (meta["fingerprint"], meta["action_space"]):
            raise UsageError(f"{p}: made with another tokenizer or action space than {paths[0]}; "
                             "train on shards of one kind")
        meta = meta or m
        episodes += [Episode(*e) for e in zip(shard.ids, shard.actions, shard.tasks.tolist(), shard.success_at.tolist())]
    return episodes, meta
