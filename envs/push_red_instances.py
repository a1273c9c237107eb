"""Build the shipped push_red task instances: ``python -m envs.push_red_instances``.

An instance is a seeded start state plus a goal image: the last frame of the scripted expert's
success from that state, i.e. the first frame with the red button pressed (VP² defines its RoboDesk
goals the same way). Instances 0-29 (seeds 0-29) are the
benchmark set, 30-59 (seeds 1000-1029) are held out. Instances whose expert run fails are skipped
for the next seed, so every shipped instance is solvable.
"""
from __future__ import annotations

from importlib import resources

import numpy as np
from tqdm import tqdm

from envs.files import atomic_write_bytes
from envs.experts.push_red import PushRedExpert
from envs.robodesk import INSTANCES_FILE, N_BENCHMARK, PushRedEnv

FIRST_SEEDS = (0, 1000)


def solve(env: PushRedEnv, qpos: np.ndarray, steps: int = 15) -> tuple[bool, np.ndarray]:
    """Run the noiseless expert from ``qpos`` until the button is pressed: (success, last frame)."""
    obs = env.start_from(qpos)
    expert = PushRedExpert(env)
    for _ in range(steps):
        obs, _, _, _, info = env.step(expert.act(obs))
        if info["success"]:
            return True, obs
    return False, obs


def build() -> dict[str, np.ndarray]:
    env = PushRedEnv()
    env.reset(seed=0)
    seeds, qposes, goals = [], [], []
    for first in FIRST_SEEDS:
        seed = first
        with tqdm(total=N_BENCHMARK, desc=f"instances from seed {first}") as bar:
            while bar.n < N_BENCHMARK:
                qpos = env.sample_start(np.random.default_rng(seed))
                ok, goal = solve(env, qpos)
                if ok:
                    seeds.append(seed)
                    qposes.append(qpos)
                    goals.append(goal)
                    bar.update()
                seed += 1
    return {"seeds": np.array(seeds), "qpos": np.stack(qposes), "goals": np.stack(goals)}


if __name__ == "__main__":
    import io
    data = build()
    buf = io.BytesIO()
    np.savez_compressed(buf, **data)
    path = resources.files("envs").joinpath("data", INSTANCES_FILE)
    atomic_write_bytes(path, buf.getvalue())
    print(f"{path}: {len(data['seeds'])} instances, seeds {data['seeds'].tolist()}")
