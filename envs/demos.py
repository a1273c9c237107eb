"""Demonstration videos: find one (a path, or a shipped demo by name) and read it at a model's frame rate.

Shipped demos (``envs/data/demos``) are recorded by our scripted experts on seeds and instances that
no evaluation uses: ``chop_wood.mp4`` and ``eat_cow.mp4`` (Crafter), ``push_red.mp4`` (RoboDesk).
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from envs import video

SHIPPED = Path(__file__).parent / "data" / "demos"


def resolve_demo(name_or_path: str | os.PathLike) -> Path:
    """A demo file from a path, or a shipped demo by name (``chop_wood`` or ``chop_wood.mp4``)."""
    path = Path(name_or_path)
    if path.is_file():
        return path
    for candidate in (SHIPPED / path.name, SHIPPED / f"{path.name}.mp4"):
        if candidate.is_file() and path.parent == Path("."):
            return candidate
    known = ", ".join(sorted(p.name for p in SHIPPED.glob("*.mp4"))) or "none"
    raise video.VideoError(f"{path}: no such demo video (shipped demos: {known})")


def load_demo(name_or_path: str | os.PathLike, size: int, fps: float | None, min_frames: int) -> np.ndarray:
    """uint8 ``[T, size, size, 3]``: resized + center-cropped, subsampled so its rate matches ``fps``.

    Raises :class:`envs.video.VideoError` (one line) for a missing, corrupt, empty or too short video.
    """
    path = resolve_demo(name_or_path)
    frames, video_fps = video.read(path, size=size, with_fps=True)
    stride = max(1, round(video_fps / fps)) if fps else 1
    frames = frames[::stride]
    if len(frames) < min_frames:
        raise video.VideoError(f"{path}: {len(frames)} frames at {video_fps / stride:g} fps (stride {stride}); "
                               f"the agent needs at least {min_frames}")
    return frames


# Seeds / instances of the shipped demos: far from every evaluation seed (0-49, 100-149) and
# dataset seed (100000+, 200000+, 300000+); push_red uses a held-out task instance.
RECIPES = {"chop_wood.mp4": ("chop_wood", 900_000, None), "eat_cow.mp4": ("eat_cow", 910_000, None),
           "push_red.mp4": ("push_red", 920_000, 45)}
DEMO_STEPS = 15  # 16 frames: one VidIT clip


def record(name: str, out_dir: Path = SHIPPED) -> Path:
    """Record a shipped demo with the scripted expert: the first seed (from the recipe's) whose
    expert succeeds within the clip, so the video shows the whole behaviour."""
    from envs import make
    from envs.experts import make_policy
    env_name, seed, instance = RECIPES[name]
    env = make(env_name)
    policy = make_policy("expert", env, seed=seed)
    for s in range(seed, seed + 100):
        obs, _ = env.reset(seed=s, options=None if instance is None else {"instance": instance})
        policy.reset(s)
        frames, success = [obs], False
        for _ in range(DEMO_STEPS):
            obs, _, terminated, truncated, info = env.step(policy.act(obs))
            frames.append(obs)
            success = success or info["success"]
            if terminated:
                break
        if success and len(frames) == DEMO_STEPS + 1:
            fps = env.metadata.get("render_fps") or 10
            return video.write(Path(out_dir) / name, np.stack(frames), fps=fps)
    raise RuntimeError(f"the {env_name} expert never succeeded within {DEMO_STEPS} steps from seed {seed}")


if __name__ == "__main__":
    for demo in RECIPES:
        print(record(demo))
