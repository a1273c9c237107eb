"""The guided agent: MPC whose planner starts from the imitation agent's plan for the demo."""
import numpy as np
import pytest

import envs
from agents.guided import fit_horizon
from agents.run_agent import RunAgentConfig, make_agent
from envs.demos import resolve_demo
from envs.video import read
from vidit.cli import UsageError, build
from worldmodel.classifier import ClassifierConfig, SuccessClassifier


def test_fit_horizon_cuts_or_repeats_the_last_action():
    plan = np.arange(6.0).reshape(3, 2)
    assert np.array_equal(fit_horizon(plan, 2), plan[:2])
    assert np.array_equal(fit_horizon(plan, 5), np.concatenate([plan, plan[-1:], plan[-1:]]))


def test_guided_mpc_executes_around_the_imitation_plan(robodesk_models, tmp_path):
    """With almost no sampling noise MPC executes its mean: the imitation agent's plan, not VP²'s zero start."""
    pytest.importorskip("robodesk")
    wm, idm = robodesk_models
    SuccessClassifier(ClassifierConfig(conditioned=True)).save_pretrained(tmp_path / "clf")
    env = envs.make("robodesk", task="push_blue")
    obs, _ = env.reset(seed=1)
    demo = read(resolve_demo("push_green.mp4"))
    first = {}
    for name in ("guided", "mpc"):
        cfg = build(RunAgentConfig, dict(env="robodesk", agent=name, demo="push_green.mp4", model=str(wm),
                                         idm=str(idm), classifier=str(tmp_path / "clf"), samples=4, horizon=2,
                                         std=(1e-6,)))
        agent, _, _ = make_agent(cfg, [env])
        agent.reset([obs], demo, [3])
        first[name] = agent.act([obs])[0]
        if name == "guided":
            plan = agent.proposer.proposals[0]
            assert plan.shape == (4, 5) and np.abs(plan[0]).max() > 1e-3
            assert np.allclose(first[name], np.clip(plan[0], -1, 1), atol=1e-4)
            assert len(agent.plan_seconds) == 1 and agent.predictions[0] is not None
    assert np.abs(first["mpc"]).max() < 1e-4
    env.close()


def test_guided_needs_a_demo(robodesk_models):
    pytest.importorskip("robodesk")
    wm, idm = robodesk_models
    env = envs.make("robodesk")
    cfg = build(RunAgentConfig, dict(env="robodesk", agent="guided", model=str(wm), idm=str(idm)))
    with pytest.raises(UsageError, match="pass --demo"):
        make_agent(cfg, [env])
    env.close()
