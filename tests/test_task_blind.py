"""Agents never read the env's task: the same demo and seed give the same actions whatever the env scores."""
import json

import numpy as np
import pytest

from agents.run_agent import RunAgentConfig, main as run_agent
from envs.demos import resolve_demo
from envs.video import read
from vidit.cli import build
from worldmodel.classifier import ClassifierConfig, SuccessClassifier


def _episode(out, **kw):
    run_agent(build(RunAgentConfig, dict(out=out, episodes=1, stop_on_success=False, seed=3, **kw)))
    row = json.loads((out / "metrics.json").read_text())["episodes"][0]
    return read(out / row["video"]), row


def test_imitation_agent_on_crafter_ignores_the_task(crafter_models, tmp_path):
    wm, idm = crafter_models
    runs = [_episode(tmp_path / task, env="crafter", task=task, agent="imitate", demo="walk_left.mp4", model=str(wm),
                     idm=str(idm), max_steps=8) for task in ("walk_left", "chop_wood")]
    (a, row_a), (b, row_b) = runs
    assert np.array_equal(a, b), "the same demo and seed: the same observations and imagined frames"
    assert row_a["task_success"] == row_b["task_success"] and len(row_a["task_success"]) == 8


@pytest.mark.parametrize("agent", ["mpc", "guided"])
def test_mpc_from_a_demo_on_robodesk_ignores_the_task(robodesk_models, tmp_path, agent):
    """MPC with a demo-conditioned cost (alone or started from the imitation agent's plan): no goal image from
    the env, the demo's end is the goal."""
    pytest.importorskip("robodesk")
    wm, idm = robodesk_models
    SuccessClassifier(ClassifierConfig(conditioned=True)).save_pretrained(tmp_path / "clf")
    runs = [_episode(tmp_path / task, env="robodesk", task=task, agent=agent, demo="push_green.mp4", model=str(wm),
                     idm=str(idm), classifier=str(tmp_path / "clf"), samples=4, horizon=2, max_steps=2, instance=1)
            for task in ("push_green", "push_blue")]
    (a, row_a), (b, row_b) = runs
    assert np.array_equal(a, b) and row_a["task_success"] == row_b["task_success"]
    assert set(row_a["task_success"]) == {"push_red", "push_green", "push_blue"}
    assert a.shape[2] == 3 * a.shape[1], "observation | imagined | goal: the goal shown is the demo's end"
    demo_end = read(resolve_demo("push_green.mp4"))[-1]
    goal = a[0, :, 2 * a.shape[1]:][::4, ::4]
    assert np.abs(goal.astype(int) - demo_end).mean() < 8


def test_run_agent_on_shipped_robodesk_defaults_records_every_task(tmp_path):
    pytest.importorskip("robodesk")
    video, row = _episode(tmp_path / "g", env="robodesk", task="push_green", demo="push_green.mp4", max_steps=2)
    saved = json.loads((tmp_path / "g" / "metrics.json").read_text())
    assert saved["model"] == "robodesk" and saved["idm"] == "robodesk" and row["steps"] == 2
    assert set(row["task_success"]) == {"push_red", "push_green", "push_blue"}
