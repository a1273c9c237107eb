"""Build the shipped RoboDesk task instances: ``python -m envs.robodesk_instances {push_red,robodesk}``.

An instance is a seeded start state plus a goal image per task: the last frame of the scripted expert's
success from that state, i.e. the first frame with the task's button pressed (VP² defines its RoboDesk
goals the same way). Instances 0-29 (seeds from 0) are the benchmark set, 30-59 (seeds from 1000) are
held out. A seed whose expert run fails on any of the file's tasks is skipped for the next, so every
shipped instance is solvable. ``push_red`` writes ``vidit/PushRed-v0``'s file (goals ``[N, H, W, 3]``),
``robodesk`` the multi-task file of ``vidit/RoboDesk-v0`` (goals ``[N, task, H, W, 3]``, one start state
for all three buttons).
"""
from __future__ import annotations

import argparse
import io
from importlib import resources

import numpy as np
from tqdm import tqdm

from envs.experts.robodesk import ButtonExpert
from envs.robodesk import DESK_INSTANCES_FILE, INSTANCES_FILE, N_BENCHMARK, TASKS, RoboDeskEnv
from vidit.files import atomic_write_bytes

FIRST_SEEDS = (0, 1000)
FILES = {"push_red": (INSTANCES_FILE, ("push_red",)), "robodesk": (DESK_INSTANCES_FILE, TASKS)}


def solve(env: RoboDeskEnv, qpos: np.ndarray, task: str, steps: int = 15) -> tuple[bool, np.ndarray]:
    """Run the noiseless expert of ``task`` from ``qpos`` until its button is pressed: (success, last frame)."""
    obs = env.start_from(qpos)
    expert = ButtonExpert(env, task=task)
    for _ in range(steps):
        obs, _, _, _, info = env.step(expert.act(obs))
        if info["task_success"][task]:
            return True, obs
    return False, obs


def build(tasks: tuple[str, ...]) -> dict[str, np.ndarray]:
    env = RoboDeskEnv(task=None)
    env.reset(seed=0)
    seeds, qposes, goals = [], [], []
    for first in FIRST_SEEDS:
        seed = first
        with tqdm(total=N_BENCHMARK, desc=f"instances from seed {first}") as bar:
            while bar.n < N_BENCHMARK:
                qpos = env.sample_start(np.random.default_rng(seed))
                solved = [solve(env, qpos, task) for task in tasks]
                if all(ok for ok, _ in solved):
                    seeds.append(seed)
                    qposes.append(qpos)
                    goals.append(np.stack([goal for _, goal in solved]))
                    bar.update()
                seed += 1
    goals = np.stack(goals)
    return {"seeds": np.array(seeds), "qpos": np.stack(qposes), "goals": goals[:, 0] if len(tasks) == 1 else goals}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("which", choices=list(FILES))
    name, tasks = FILES[parser.parse_args().which]
    data = build(tasks)
    buf = io.BytesIO()
    np.savez_compressed(buf, **data)
    path = resources.files("envs").joinpath("data", name)
    atomic_write_bytes(path, buf.getvalue())
    print(f"{path}: {len(data['seeds'])} instances, seeds {data['seeds'].tolist()}")
