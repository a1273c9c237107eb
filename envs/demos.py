"""Demonstration videos: find one (a path, or a shipped demo by name) and read it at a model's frame rate.

Shipped demos (``envs/data/demos``) are recorded by our scripted experts on seeds and instances that
no evaluation uses: one per Crafter task (``chop_wood.mp4``, ``eat_cow.mp4``, ``collect_sapling.mp4``,
``drink_water.mp4``, ``walk_left.mp4`` ...), one per RoboDesk button (``push_red.mp4``,
``push_green.mp4``, ``push_blue.mp4``, all on held-out instance 45), and a random policy's
``crafter_random.mp4`` and ``push_red_random.mp4``. ``python -m envs.demos [NAME ...]`` records them.
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


# (env, policy, seed, instance) of the shipped demos: seeds far from every evaluation seed (0-49, 100-149)
# and dataset seed (100000+, 200000+, 300000+); push_red uses a held-out task instance. The random-policy
# demos are the "random demonstration" of the imitation benchmark.
RECIPES = {"chop_wood.mp4": ("chop_wood", "expert", 900_000, None),
           "eat_cow.mp4": ("eat_cow", "expert", 910_000, None),
           "push_red.mp4": ("push_red", "expert", 920_000, 45),
           "crafter_random.mp4": ("crafter", "random", 930_000, None),
           "push_red_random.mp4": ("push_red", "random", 940_000, 45),
           "push_green.mp4": ("push_green", "expert", 920_000, 45),
           "push_blue.mp4": ("push_blue", "expert", 920_000, 45),
           **{f"{task}.mp4": (task, "expert", seed, None) for task, seed in (
               ("collect_sapling", 950_000), ("drink_water", 960_000), ("walk_left", 970_000),
               ("walk_right", 971_000), ("walk_up", 972_000), ("walk_down", 973_000))}}
DEMO_STEPS = 15  # 16 frames: one VidIT clip


def record(name: str, out_dir: Path = SHIPPED) -> Path:
    """Record a shipped demo: for an expert, the first seed (from the recipe's) whose expert succeeds
    within the clip, so the video shows the whole behaviour; for the random policy, the first seed whose
    clip is whole (the player did not die)."""
    from envs import make
    from envs.experts import make_policy
    env_name, policy_name, seed, instance = RECIPES[name]
    env = make(env_name)
    policy = make_policy(policy_name, env, seed=seed)
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
        if (success or policy_name == "random") and len(frames) == DEMO_STEPS + 1:
            fps = env.metadata.get("render_fps") or 10
            return video.write(Path(out_dir) / name, np.stack(frames), fps=fps)
    raise RuntimeError(f"the {env_name} {policy_name} policy never made a whole clip within {DEMO_STEPS} steps "
                       f"from seed {seed}")


if __name__ == "__main__":
    import sys
    for demo in sys.argv[1:] or RECIPES:
        print(record(demo))
