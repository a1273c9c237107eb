"""``import_videos``: turn your own videos into an episode dataset the trainers read.

    import_videos --videos my_clips/ --out data/my_clips [--size 64] [--fps 10]

Every video PyAV decodes (any container, codec, size, fps) becomes one episode: resized and
center-cropped to ``--size``, subsampled to about ``--fps`` (stride = round(source fps / fps)).
Videos carry no actions, so the table's ``action`` column is empty: enough for the world model, not
for inverse dynamics. A missing, corrupt, empty or too short video stops the import with one line
naming it, before anything is written; with ``--skip-bad`` the others are imported and the skipped ones
listed (in ``meta/info.json`` too).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from envs import video
from envs.dataset import FORMAT, complete_episodes, write_episode
from vidit.cli import UsageError, run
from vidit.files import write_json

SUFFIXES = {".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".gif"}


@dataclass
class ImportConfig:
    """Convert a folder (or list) of videos into an episode dataset for world-model training."""
    videos: tuple[Path, ...] = field(default=(), metadata={"help": "video files or folders of videos", "positional": True})
    out: Path = field(default=Path("data/videos"), metadata={"help": "dataset folder to create"})
    size: int = field(default=64, metadata={"help": "frame size after resize + center-crop"})
    fps: float = field(default=10.0, metadata={"help": "target frame rate; the stride is set from each video's fps"})
    skip_bad: bool = field(default=False, metadata={
        "help": "import the readable videos and list the bad ones (default: a bad video stops the import)"})

    def __post_init__(self):
        if self.size < 8 or self.fps <= 0:
            raise UsageError(f"--size must be >= 8 and --fps > 0, got {self.size}, {self.fps}")
        if not self.videos:
            raise UsageError("give at least one video file or folder")


def find_videos(paths: tuple[Path, ...]) -> list[Path]:
    files: list[Path] = []
    for p in paths:
        if p.is_dir():
            found = sorted(f for f in p.rglob("*") if f.suffix.lower() in SUFFIXES)
            if not found:
                raise UsageError(f"{p}: no videos ({', '.join(sorted(SUFFIXES))}) in this folder")
            files += found
        else:
            files.append(p)
    return files


def import_videos(cfg: ImportConfig) -> int:
    """Decode every video first (so a bad one writes nothing), then write one episode each."""
    files = find_videos(cfg.videos)
    if complete_episodes(cfg.out):
        raise UsageError(f"{cfg.out} already holds episodes; choose a new --out")
    clips, sources, skipped = [], [], {}
    for f in tqdm(files, desc="decode", unit="video"):
        try:
            frames, fps = video.read(f, size=cfg.size, with_fps=True)
            frames = frames[::max(1, round(fps / cfg.fps))]
            if len(frames) < 2:
                raise UsageError(f"{f}: only {len(frames)} frame(s) at {cfg.fps:g} fps; need at least 2")
        except (video.VideoError, UsageError) as e:
            if not cfg.skip_bad:
                raise
            skipped[str(f)] = " ".join(str(e).split())
            continue
        clips.append(frames)
        sources.append(str(f))
    if not clips:
        raise UsageError(f"none of the {len(files)} video(s) could be imported")
    for f, why in skipped.items():
        print(f"import_videos: skipped {why}")
    write_json(cfg.out / "meta" / "info.json", {
        "format": FORMAT, "env_id": None, "fps": cfg.fps, "frame_shape": [cfg.size, cfg.size, 3],
        "action_space": None, "sources": sources, "skipped": skipped, "total_episodes": len(clips)})
    for i, frames in enumerate(tqdm(clips, desc="write", unit="ep")):
        n = len(frames) - 1
        write_episode(cfg.out, i, frames, {"action": np.zeros((n, 0), np.float32)}, fps=cfg.fps)
    return len(clips)


def main(cfg: ImportConfig) -> None:
    n = import_videos(cfg)
    print(f"{cfg.out}: {n} episodes from {len(cfg.videos)} path(s)")


def cli() -> None:
    run(main, ImportConfig)


if __name__ == "__main__":
    cli()
