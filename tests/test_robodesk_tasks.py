"""``vidit/RoboDesk-v0``: three button tasks on one desk, where only a demo can say the task."""
import numpy as np
import pytest

pytest.importorskip("robodesk")

import envs  # noqa: E402
from envs.experts import make_policy  # noqa: E402
from envs.robodesk import DESK_INSTANCES_FILE, TASKS, load_instances  # noqa: E402


@pytest.fixture(scope="module")
def env():
    e = envs.make("robodesk")
    yield e
    e.close()


def test_registration_and_short_names():
    assert envs.resolve("robodesk") == ("vidit/RoboDesk-v0", {})
    assert envs.resolve("push_green") == ("vidit/RoboDesk-v0", {"task": "push_green"})
    assert envs.resolve("push_red")[0] == "vidit/PushRed-v0"  # VP²'s benchmark env stays as it was
    with pytest.raises(ValueError, match="push_green"):
        envs.make("robodesk", task="push_yellow")


def test_the_task_does_not_change_the_start(env):
    """Same seed and instance, any task: the same first frame, so a query cannot tell the task."""
    firsts = []
    for task in (*TASKS, None):
        env.unwrapped.task = task
        firsts.append(env.reset(seed=5)[0])
        firsts.append(env.reset(options={"instance": 33})[0])
    env.unwrapped.task = "push_red"
    assert all(np.array_equal(firsts[i], firsts[i % 2]) for i in range(len(firsts)))


@pytest.mark.parametrize("task", ["push_green", "push_blue"])
def test_expert_presses_its_button_only_and_task_only_scores(task):
    """The expert of ``task`` presses that button: ``task_success`` names it alone; an env scored on
    another task sees the same physics but reports no success; ``task=None`` scores nothing."""
    runs = {}
    for scored in (task, "push_red", None):
        env = envs.make("robodesk", task=scored)
        obs, info = env.reset(options={"instance": 31})
        assert set(info["task_success"]) == set(TASKS) and not any(info["task_success"].values())
        expert = make_policy("expert", envs.make("robodesk", task=task), seed=0)  # a second env only names the task
        expert.env = env.unwrapped
        rewards, frames = [], [obs]
        for _ in range(15):
            obs, reward, terminated, truncated, info = env.step(expert.act(obs))
            rewards.append(reward)
            frames.append(obs)
        runs[scored] = (np.stack(frames), info, rewards, truncated)
        env.close()
    frames, info, rewards, truncated = runs[task]
    assert info["task_success"] == {t: t == task for t in TASKS}
    assert info["success"] and sum(rewards) == 1.0 and truncated  # the step budget still ends it
    assert np.isfinite(info["distance"]) and info["distance"] < 0.1
    for other in ("push_red", None):
        f, i, r, t = runs[other]
        assert np.array_equal(f, frames) and i["task_success"] == info["task_success"]
        assert not i["success"] and sum(r) == 0.0 and t
    assert np.isnan(runs[None][1]["distance"])


def test_instances_have_a_goal_per_task(env):
    inst = load_instances(DESK_INSTANCES_FILE)
    assert inst["goals"].shape == (60, len(TASKS), 64, 64, 3)
    assert np.array_equal(inst["seeds"], load_instances()["seeds"])  # the same start states as PushRed's
    for k, task in enumerate(TASKS):
        env.unwrapped.task = task
        _, info = env.reset(options={"instance": 2})
        assert np.array_equal(info["goal"], inst["goals"][2, k])
    env.unwrapped.task = None
    assert "goal" not in env.reset(options={"instance": 2})[1]
    env.unwrapped.task = "push_red"
    # each task's goal differs from the others where its light is
    assert np.abs(inst["goals"][:, 1].astype(int) - inst["goals"][:, 2]).mean() > 1


def test_state_round_trip_keeps_every_latch(env):
    env.unwrapped.task = "push_blue"
    obs, _ = env.reset(options={"instance": 0})
    expert = make_policy("expert", env, seed=0)
    for _ in range(15):
        obs, _, _, _, info = env.step(expert.act(obs))
        if info["success"]:
            break
    state = env.unwrapped.get_state()
    latched = dict(env.unwrapped.task_success)
    env.reset(seed=1)
    env.unwrapped.set_state(state)
    assert env.unwrapped.task_success == latched and latched["push_blue"]
    env.unwrapped.task = "push_red"


def test_expert_without_a_task_is_a_clear_error():
    from vidit.cli import UsageError
    with pytest.raises(UsageError, match="task"):
        make_policy("expert", envs.make("robodesk", task=None))
