"""Episode datasets: one mp4 per episode, per-step parquet tables, ``meta/info.json``.

The layout follows LeRobot's v2 datasets, so its tools can read it::

    ROOT/meta/info.json                                   env id, fps, action space, versions, collect config
    ROOT/data/chunk-000/episode_000000.parquet            one row per step (T rows)
    ROOT/videos/chunk-000/observation.image/episode_000000.mp4   T + 1 frames (obs before each step, then the last)

Row ``t`` holds the action taken on frame ``t`` and what followed it: reward, success, terminated,
truncated, plus the episode's seed and task instance. ``pyarrow.parquet.read_table(ROOT / "data")``
reads all episodes as one table. An episode exists once its parquet does: it is written last and
atomically, so an interrupted writer never leaves a half episode.

Readers for training: :class:`Clips` (fixed-length frame clips with a stride, for the world model)
and :class:`Windows` (consecutive frames with their actions, for the inverse-dynamics model).
"""
from __future__ import annotations

import functools
import json
import os
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from envs import video
from vidit.files import atomic_write_bytes

CHUNK = 1000
VIDEO_KEY = "observation.image"
FORMAT = "vidit-episodes/1 (LeRobot v2 layout)"


def episode_paths(root: Path, index: int) -> tuple[Path, Path]:
    """(parquet, mp4) paths of episode ``index`` under ``root``."""
    chunk = f"chunk-{index // CHUNK:03d}"
    return (root / "data" / chunk / f"episode_{index:06d}.parquet",
            root / "videos" / chunk / VIDEO_KEY / f"episode_{index:06d}.mp4")


def write_episode(root: Path, index: int, frames: np.ndarray, steps: dict[str, np.ndarray], fps: float) -> None:
    """Write one episode: ``frames`` uint8 [T+1, H, W, 3]; ``steps`` columns of length T (``action`` [T, A])."""
    parquet, mp4 = episode_paths(root, index)
    n = len(steps["action"])
    if len(frames) != n + 1:
        raise ValueError(f"episode {index}: {len(frames)} frames for {n} steps; expected steps + 1")
    video.write(mp4, frames, fps=fps)
    action = np.asarray(steps["action"], np.float32).reshape(n, -1)
    columns = {
        "episode_index": pa.array(np.full(n, index, np.int64)),
        "frame_index": pa.array(np.arange(n, dtype=np.int64)),
        "timestamp": pa.array(np.arange(n, dtype=np.float32) / fps),
    }
    if action.shape[1]:  # videos imported without actions have no action column
        columns["action"] = pa.FixedSizeListArray.from_arrays(pa.array(action.ravel()), action.shape[1])
    for key, value in steps.items():
        if key != "action":
            columns[key] = pa.array(np.asarray(value))
    sink = pa.BufferOutputStream()
    pq.write_table(pa.table(columns), sink)
    atomic_write_bytes(parquet, sink.getvalue().to_pybytes())


def complete_episodes(root: Path) -> list[int]:
    """Indices of the episodes whose table (written last) exists."""
    return sorted(int(p.stem.split("_")[1]) for p in (Path(root) / "data").glob("chunk-*/episode_*.parquet"))


class EpisodeDataset:
    """Read access to an episode folder: metadata, per-episode frames and step tables."""

    def __init__(self, root: str | os.PathLike, cache_episodes: int = 4096):
        self.root = Path(root)
        info = self.root / "meta" / "info.json"
        if not info.is_file():
            raise FileNotFoundError(f"{self.root}: not an episode dataset (no meta/info.json)")
        self.info = json.loads(info.read_text())
        self.episodes = complete_episodes(self.root)
        if not self.episodes:
            raise ValueError(f"{self.root}: dataset has no complete episode")
        self.table = pq.read_table(self.root / "data").sort_by([("episode_index", "ascending"),
                                                                ("frame_index", "ascending")])
        ep = self.table.column("episode_index").to_numpy()
        starts = np.searchsorted(ep, self.episodes)
        self._rows = dict(zip(self.episodes, zip(starts, np.searchsorted(ep, self.episodes, side="right"))))
        self.frames = functools.lru_cache(maxsize=cache_episodes)(self._frames)

    @property
    def fps(self) -> float:
        return float(self.info["fps"])

    def __len__(self) -> int:
        return len(self.episodes)

    def length(self, episode: int) -> int:
        """Number of steps (frames - 1) of ``episode``."""
        lo, hi = self._rows[episode]
        return int(hi - lo)

    def steps(self, episode: int) -> pa.Table:
        lo, hi = self._rows[episode]
        return self.table.slice(lo, hi - lo)

    def actions(self, episode: int) -> np.ndarray:
        """float32 [T, A]; A = 0 for videos imported without actions."""
        steps = self.steps(episode)
        if "action" not in steps.column_names:
            return np.zeros((steps.num_rows, 0), np.float32)
        col = steps.column("action").combine_chunks()
        return col.flatten().to_numpy(zero_copy_only=False).reshape(len(col), -1).astype(np.float32)

    def _frames(self, episode: int) -> np.ndarray:
        return video.read(episode_paths(self.root, episode)[1])


class Clips:
    """Clips of ``length`` frames taken every ``stride`` frames, starting every ``step`` frames.

    ``clips[i]`` is uint8 [length, H, W, 3]; episodes shorter than one clip are skipped.
    """

    def __init__(self, data: EpisodeDataset, length: int = 16, stride: int = 1, step: int | None = None,
                 episodes: list[int] | None = None):
        if length < 1 or stride < 1:
            raise ValueError(f"length and stride must be >= 1, got {length}, {stride}")
        self.data, self.length, self.stride = data, length, stride
        span = (length - 1) * stride + 1
        step = step or span
        self.index = [(e, s) for e in (episodes if episodes is not None else data.episodes)
                      for s in range(0, data.length(e) + 1 - span + 1, step)]

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, i: int) -> np.ndarray:
        episode, start = self.index[i]
        return self.data.frames(episode)[start:start + (self.length - 1) * self.stride + 1:self.stride]


class Windows:
    """Windows of ``size`` consecutive frames with the ``size - 1`` actions between them, for inverse dynamics.

    ``windows[i]`` is ``{"frames": uint8 [size, H, W, 3], "actions": float32 [size - 1, A]}``.
    """

    def __init__(self, data: EpisodeDataset, size: int = 2, episodes: list[int] | None = None):
        if size < 2:
            raise ValueError(f"a window needs >= 2 frames, got {size}")
        self.data, self.size = data, size
        self.index = [(e, s) for e in (episodes if episodes is not None else data.episodes)
                      for s in range(data.length(e) + 2 - size)]

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, i: int) -> dict[str, np.ndarray]:
        episode, start = self.index[i]
        return {"frames": self.data.frames(episode)[start:start + self.size],
                "actions": self.data.actions(episode)[start:start + self.size - 1]}
