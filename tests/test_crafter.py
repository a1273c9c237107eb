"""The real Crafter env: API checks, seeded determinism, the task suite's scoring, the scripted experts, bad input."""
from __future__ import annotations

import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env as gym_check_env

import envs
from envs.crafter import TASKS, WALK_DISTANCE, WALKS, CrafterEnv
from envs.experts import make_policy
from envs.experts.crafter import CrafterExpert, WalkPolicy
from vidit.cli import UsageError


@pytest.fixture(scope="module")
def env():
    env = envs.make("crafter")
    yield env
    env.close()


def rollout(env, seed: int, policy, steps: int):
    """Frames, rewards and infos of up to ``steps`` steps from ``reset(seed=seed)``."""
    obs, info = env.reset(seed=seed)
    policy.reset(seed)
    frames, rewards, infos = [obs], [], [info]
    for _ in range(steps):
        obs, reward, terminated, truncated, info = env.step(policy.act(obs))
        frames.append(obs)
        rewards.append(reward)
        infos.append(info)
        if terminated or truncated:
            break
    return np.stack(frames), rewards, infos, truncated


def test_env_checkers_pass(env):
    from stable_baselines3.common.env_checker import check_env as sb3_check_env

    gym_check_env(env.unwrapped)
    sb3_check_env(env.unwrapped, warn=False)
    assert env.observation_space.shape == (64, 64, 3) and env.action_space.n == len(CrafterEnv.action_names) == 17


def test_same_seed_gives_same_frames(env):
    policy = make_policy("random", env)

    def run():
        frames, _, infos, _ = rollout(env, 3, policy, 20)
        next_frame, _ = env.reset()  # an unseeded reset continues the seeded stream
        return frames, [i["success"] for i in infos], next_frame

    (frames_a, success_a, next_a), (frames_b, success_b, next_b) = run(), run()
    assert frames_a.shape == (21, 64, 64, 3) and frames_a.dtype == np.uint8
    np.testing.assert_array_equal(frames_a, frames_b)
    assert success_a == success_b
    np.testing.assert_array_equal(next_a, next_b)
    assert not np.array_equal(frames_a[0], next_a)  # a different world
    assert not all(np.array_equal(frames_a[0], f) for f in frames_a[1:])  # the actions change the view


@pytest.mark.parametrize("seed", [0, 1])
def test_chop_wood_expert_succeeds_once_rewarded(env, seed):
    frames, rewards, infos, truncated = rollout(env, seed, make_policy("expert", env, seed=seed), 200)
    assert truncated and len(rewards) == 100  # the registered 100-step budget
    first = next(i for i, info in enumerate(infos) if info["success"])
    assert 0 < first <= 30 and infos[first]["achievements"]["collect_wood"] >= 1
    assert rewards[first - 1] == 1.0 and sum(rewards) == 1.0  # once, when wood is first collected
    assert all(info["success"] for info in infos[first:])
    assert infos[-1]["achievements"]["collect_wood"] > 1  # keeps chopping after success
    np.testing.assert_array_equal(env.render(), frames[-1])


def test_eat_cow_expert_succeeds():
    env = envs.make("eat_cow")
    assert env.unwrapped.task == "eat_cow"
    _, rewards, infos, _ = rollout(env, 0, make_policy("expert", env, seed=0), 100)
    assert infos[-1]["success"] and infos[-1]["achievements"]["eat_cow"] >= 1
    assert sum(rewards) == 1.0 and not infos[0]["success"]


@pytest.mark.parametrize("task", TASKS)
@pytest.mark.parametrize("seed", [0, 1])
def test_every_expert_succeeds(task, seed):
    env = envs.make("crafter", task=task)
    _, rewards, infos, _ = rollout(env, seed, make_policy("expert", env, seed=seed), 100)
    first = next(i for i, info in enumerate(infos) if info["success"])
    assert rewards[first - 1] == 1.0 and sum(rewards) == 1.0 and infos[first]["task_success"][task]
    assert all(info["success"] for info in infos[first:])


def test_task_only_scores():
    """Every task (and none) sees the same world, frames and ``task_success`` for the same seed and actions."""
    expert_env = CrafterEnv(task="chop_wood")
    expert = make_policy("expert", expert_env, noise=0.3, seed=0)
    obs, _ = expert_env.reset(seed=0)
    actions = []  # the noisy expert's actions, replayed below
    for _ in range(40):
        actions.append(expert.act(obs))
        obs, *_ = expert_env.step(actions[-1])
    runs = {}
    for task in TASKS + (None,):
        env = CrafterEnv(task=task)
        obs, info = env.reset(seed=0)
        frames, infos, rewards = [obs], [info], []
        for action in actions:
            obs, reward, _, _, info = env.step(action)
            frames.append(obs)
            infos.append(info)
            rewards.append(reward)
        runs[task] = np.stack(frames), [i["task_success"] for i in infos], infos, rewards
    reference_frames, reference_success, _, _ = runs[None]
    np.testing.assert_array_equal(reference_frames[-1], expert_env.render())
    for task, (frames, task_success, infos, rewards) in runs.items():
        np.testing.assert_array_equal(frames, reference_frames)
        assert task_success == reference_success
        assert [i["success"] for i in infos] == [s.get(task, False) for s in task_success]
        assert sum(rewards) == float(task_success[-1].get(task, False))
    assert reference_success[-1]["chop_wood"]  # scored for every task, even with task=None
    assert not any(i["success"] for i in runs[None][2]) and not any(runs[None][3])


def test_task_none_scores_nothing_and_runs_the_budget():
    env = envs.make("crafter", task=None)
    assert env.unwrapped.task is None
    _, rewards, infos, truncated = rollout(env, 1, make_policy("random", env), 200)
    assert truncated and len(rewards) == 100 and not any(rewards)
    assert all(list(info["task_success"]) == list(TASKS) and not info["success"] for info in infos)
    with pytest.raises(UsageError, match="give the env a task"):
        make_policy("expert", env)
    with pytest.raises(ValueError, match="give the env one of"):
        CrafterExpert(env.unwrapped)


@pytest.mark.parametrize("task", WALKS)
def test_walk_success_fires_at_the_threshold(task):
    """Seed 0 has free grass 5 cells each way: walking blindly scores at exactly ``WALK_DISTANCE`` steps."""
    env = CrafterEnv(task=task)
    _, rewards, infos, _ = rollout(env, 0, WalkPolicy(env, task.removeprefix("walk_")), WALK_DISTANCE)
    (dx, dy), (sx, sy) = WALKS[task], env.start_pos
    assert tuple(env.player.pos) == (sx + dx * WALK_DISTANCE, sy + dy * WALK_DISTANCE)
    assert [i["success"] for i in infos] == [False] * WALK_DISTANCE + [True]
    assert rewards[-1] == 1.0 and sum(rewards) == 1.0
    assert [t for t, done in infos[-1]["task_success"].items() if done] == [task]


def test_despawn_does_not_depend_on_set_order(monkeypatch):
    """Crafter despawns a random creature of a chunk's object set; the pick must not follow set order."""
    from crafter.objects import Cow

    base = CrafterEnv()
    base.reset(seed=0)
    world, (px, py) = base.world, base.player.pos
    free = [(x, y) for x in range(64) for y in range(64)
            if world[x, y] == ("grass", None) and abs(x - px) + abs(y - py) >= 6]
    chunk = world.chunk_key(free[0])
    for cell in [c for c in free if world.chunk_key(c) == chunk][:6]:
        world.add(Cow(world, cell))
    objs = list(world.chunks[chunk])
    removed: list[tuple[int, int]] = []
    monkeypatch.setattr(world, "remove", lambda obj: removed.append(tuple(obj.pos)))
    monkeypatch.setattr(world, "add", lambda obj: None)

    def picks(order):
        out = []
        for k in range(40):
            world.random.seed(k)
            removed.clear()
            base._env._balance_chunk(chunk, order)
            out.append(list(removed))
        return out

    forward = picks(objs)
    assert any(forward) and forward == picks(objs[::-1])


def test_death_terminates(env):
    env.reset(seed=0)
    env.unwrapped.player.health = 0
    _, _, terminated, truncated, _ = env.step(0)
    assert terminated and not truncated


@pytest.mark.parametrize("action", [-1, 17, 2.0, np.nan, np.array([1, 2]), "do", None])
def test_bad_action_raises(env, action):
    with pytest.raises(ValueError, match="invalid"):
        env.unwrapped.step(action)


def test_unknown_task_raises():
    with pytest.raises(ValueError, match=", ".join(TASKS)):
        CrafterEnv(task="mine_diamond")


@pytest.mark.parametrize("name,task", [("crafter", "chop_wood")] + [(task, task) for task in TASKS])
def test_short_names_resolve(name, task):
    env = envs.make(name)
    assert env.spec.id == "vidit/Crafter-v0" and env.spec.max_episode_steps == 100
    assert isinstance(env.unwrapped, CrafterEnv) and env.unwrapped.task == task
