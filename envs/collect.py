"""``collect``: record episodes of a policy in an env to an episode dataset (see :mod:`envs.dataset`).

    collect --env vidit/PushRed-v0 --policy expert --noise 0.1 --episodes 100 --out data/push_red

Episode ``i`` is seeded with ``seed + i`` (env and policy), so a dataset is reproducible and a rerun
continues where an interrupted one stopped. Episodes run in ``--workers`` processes.
"""
from __future__ import annotations

import contextlib
import json
import multiprocessing as mp
import platform
import time
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Literal, Optional

import numpy as np
from tqdm import tqdm

import envs
from envs.actions import space_json
from envs.dataset import FORMAT, complete_episodes, write_episode
from envs.experts import POLICIES, make_policy
from vidit.cli import UsageError, run
from vidit.files import write_json
from vidit.runs import differences

# Settings that must match for a rerun to add to an existing dataset.
_IDENTITY = ("env", "task", "policy", "noise", "seed", "instances", "max_steps")


@dataclass
class CollectConfig:
    """Record episodes of a scripted expert or a random policy to an episode dataset."""
    env: str = field(default="vidit/PushRed-v0", metadata={"help": "env id or short name (push_red, crafter, minerl)"})
    policy: str = field(default="expert", metadata={"help": "policy", "choices": list(POLICIES)})
    noise: float = field(default=0.0, metadata={"help": "expert action noise (Gaussian std, or random-action prob.)"})
    episodes: int = field(default=10, metadata={"help": "total episodes the dataset should hold"})
    out: Path = field(default=Path("data/episodes"), metadata={"help": "dataset folder (created or resumed)"})
    seed: int = field(default=0, metadata={"help": "episode i uses seed + i"})
    workers: int = field(default=1, metadata={"help": "parallel worker processes"})
    task: Optional[str] = field(default=None, metadata={
        "help": "env task (RoboDesk: push_red, push_green, push_blue; Crafter: chop_wood, eat_cow, collect_sapling, "
                "drink_water, walk_left, ...)"})
    instances: Literal["none", "benchmark", "heldout"] = field(
        default="none", metadata={"help": "RoboDesk: start from the shipped task instances (episode i -> i mod 30)"})
    max_steps: Optional[int] = field(default=None, metadata={"help": "steps per episode (default: the env's budget)"})

    def __post_init__(self):
        self.env = envs.resolve(self.env)[0] if self.env else self.env
        for name in ("episodes", "workers"):
            if getattr(self, name) < 1:
                raise UsageError(f"--{name} must be >= 1, got {getattr(self, name)}")
        if self.noise < 0:
            raise UsageError(f"--noise must be >= 0, got {self.noise}")
        if self.max_steps is not None and self.max_steps < 1:
            raise UsageError(f"--max-steps must be >= 1, got {self.max_steps}")
        if self.instances != "none" and self.env not in ("vidit/PushRed-v0", "vidit/RoboDesk-v0"):
            raise UsageError(f"--instances applies to RoboDesk envs only, not {self.env}")


def _env_kwargs(cfg: CollectConfig) -> dict:
    kwargs = {} if cfg.task is None else {"task": cfg.task}
    if cfg.max_steps is not None:
        kwargs["max_episode_steps"] = cfg.max_steps
    return kwargs


def _versions() -> dict:
    out = {"python": platform.python_version()}
    for pkg in ("vidit", "gymnasium", "numpy", "robodesk", "mujoco", "dm_control", "crafter", "av"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            pass
    return out


def run_episode(env, policy, seed: int, instance: int | None) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Roll out ``policy`` for one episode; returns frames [T+1, ...] and per-step columns: action, reward,
    success, terminated, truncated, seed, instance, task (the env's, "" for none) and, where the env
    reports them, ``task_success.<task>`` for every task it scores."""
    options = None if instance is None else {"instance": instance}
    obs, info = env.reset(seed=seed, options=options)
    policy.reset(seed)
    frames, rows = [obs], {k: [] for k in ("action", "reward", "success", "terminated", "truncated")}
    per_task: dict[str, list[bool]] = {}
    done = False
    while not done:
        action = policy.act(obs)
        obs, reward, terminated, truncated, info = env.step(action)
        frames.append(obs)
        for key, value in zip(rows, (np.asarray(action, np.float32).reshape(-1), reward, bool(info.get("success", False)),
                                     terminated, truncated)):
            rows[key].append(value)
        for name, hit in info.get("task_success", {}).items():
            per_task.setdefault(name, []).append(bool(hit))
        done = terminated or truncated
    n = len(rows["action"])
    steps = {k: np.asarray(v) for k, v in rows.items()}
    steps["reward"] = steps["reward"].astype(np.float32)
    steps["seed"] = np.full(n, seed, np.int64)
    steps["instance"] = np.full(n, -1 if instance is None else instance, np.int64)
    task = getattr(env.unwrapped, "task", None)
    steps["task"] = np.full(n, task or "")
    steps.update({f"task_success.{name}": np.asarray(hits) for name, hits in per_task.items()})
    return np.stack(frames), steps


class _Worker:
    """One env and policy per process, reused across episodes."""
    env = policy = cfg = None

    @classmethod
    def init(cls, cfg: CollectConfig) -> None:
        cls.cfg = cfg
        cls.env = envs.make(cfg.env, **_env_kwargs(cfg))
        cls.policy = make_policy(cfg.policy, cls.env, noise=cfg.noise)

    @classmethod
    def episode(cls, index: int) -> tuple[int, bool, int]:
        cfg = cls.cfg
        instance = None
        if cfg.instances != "none":
            instance = index % 30 + (30 if cfg.instances == "heldout" else 0)
        frames, steps = run_episode(cls.env, cls.policy, cfg.seed + index, instance)
        write_episode(cfg.out, index, frames, steps, fps=cls.env.metadata.get("render_fps", 10))
        return index, bool(steps["success"][-1]), len(frames) - 1


def _prepare(cfg: CollectConfig) -> dict:
    """Create ``meta/info.json`` or check that an existing dataset was collected the same way."""
    info_path = cfg.out / "meta" / "info.json"
    identity = {k: getattr(cfg, k) for k in _IDENTITY}
    for stale in cfg.out.glob("**/.*"):  # temp files of a killed run
        if stale.is_file():
            stale.unlink()
    if info_path.exists():
        old = json.loads(info_path.read_text())
        if differ := differences(old["collect"], identity, only=_IDENTITY):
            raise UsageError(f"{cfg.out} holds episodes collected differently ({'; '.join(differ)}); "
                             "use another --out")
        return old
    env = envs.make(cfg.env, **_env_kwargs(cfg))
    info = {"format": FORMAT, "env_id": cfg.env, "task": getattr(env.unwrapped, "task", None),
            "fps": env.metadata.get("render_fps", 10),
            "frame_shape": list(env.observation_space.shape), "action_space": space_json(env.action_space),
            "collect": identity, "versions": _versions()}
    env.close()
    write_json(info_path, info)
    return info


def collect(cfg: CollectConfig) -> dict:
    """Collect up to ``cfg.episodes`` episodes into ``cfg.out``; returns a summary."""
    cfg.out.mkdir(parents=True, exist_ok=True)
    info = _prepare(cfg)
    done = set(complete_episodes(cfg.out))
    todo = [i for i in range(cfg.episodes) if i not in done]
    start = time.perf_counter()
    with contextlib.ExitStack() as stack:
        if cfg.workers > 1 and len(todo) > 1:
            pool = stack.enter_context(mp.get_context("spawn").Pool(min(cfg.workers, len(todo)), _Worker.init, (cfg,)))
            episodes = pool.imap_unordered(_Worker.episode, todo)
        else:
            _Worker.init(cfg)
            episodes = map(_Worker.episode, todo)
        results = list(tqdm(episodes, total=cfg.episodes, initial=cfg.episodes - len(todo),
                            desc=f"collect {cfg.env}", unit="ep"))
    elapsed = time.perf_counter() - start
    info["total_episodes"] = len(complete_episodes(cfg.out))
    write_json(cfg.out / "meta" / "info.json", info)
    steps = sum(r[2] for r in results)
    summary = {"new_episodes": len(results), "total_episodes": info["total_episodes"],
               "success_rate_new": float(np.mean([r[1] for r in results])) if results else None,
               "seconds": round(elapsed, 2), "steps_per_s": round(steps / elapsed, 2) if results else None}
    return summary


def main(cfg: CollectConfig) -> None:
    s = collect(cfg)
    rate = "" if s["success_rate_new"] is None else f", success {s['success_rate_new']:.0%}"
    print(f"{cfg.out}: {s['total_episodes']} episodes ({s['new_episodes']} new{rate}, "
          f"{s['seconds']} s, {s['steps_per_s']} steps/s)")


def cli() -> None:
    run(main, CollectConfig)


if __name__ == "__main__":
    cli()
