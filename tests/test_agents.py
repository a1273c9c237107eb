"""Closed-loop agents in the real envs with tiny untrained models: the imitation agent, baselines,
``run_agent`` end to end (files, metrics, determinism) and its bad-input paths; shipped demos."""
import json
import shutil

import av
import numpy as np
import pytest

import envs
from agents.action_prior import ActionPrior, DemoActionAgent
from agents.costs import VideoCost
from agents.imitation import ImitationAgent, ImitationConfig
from agents.run_agent import RunAgentConfig, check_demo_env, finished_run, main, run_episodes
from envs.demos import RECIPES, load_demo
from envs.video import read, write
from idm.model import InverseDynamics
from vidit.cli import build, config_json, run
from vidit.pretrained import WEIGHTS_NAME
from worldmodel.simulator import VideoSimulator


def agent_cfg(models, out, **kw):
    return build(RunAgentConfig, {**dict(model=str(models[0]), idm=str(models[1]), out=out), **kw})


def test_run_agent_imitates_in_crafter_and_writes_videos_and_metrics(crafter_models, tmp_path, capsys):
    summary = main(agent_cfg(crafter_models, tmp_path / "out", env="crafter", demo="chop_wood.mp4", episodes=3,
                             batch=2, max_steps=6, replan_every=2, n_candidates=2))
    assert set(summary) == {"episodes", "success_rate", "mean_steps", "mean_return", "mean_wall_s", "total_wall_s",
                            "mean_plan_s"}  # an imagination round per replan, timed
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert [e["seed"] for e in metrics["episodes"]] == [0, 1, 2]  # a batch of 2, then 1
    for e in metrics["episodes"]:
        assert {"success", "steps", "return", "wall_s"} <= set(e) and 1 <= e["steps"] <= 6
        frames = read(tmp_path / "out" / e["video"])
        assert frames.shape[1:] == (256, 512, 3) and len(frames) == e["steps"] + 1  # real | imagined, x4
        assert frames[1:, :, 256:].max() > 0  # imagined frames are shown after the first step
    assert "success" in capsys.readouterr().out.splitlines()[-1]


def test_imitation_agent_in_push_red_and_same_seed_same_episode(push_red_models):
    env = envs.make("push_red", max_episode_steps=3)
    sim = VideoSimulator.from_pretrained(push_red_models[0])
    agent = ImitationAgent(sim, InverseDynamics.from_pretrained(push_red_models[1]),
                           ImitationConfig(replan_every=2))
    demo = load_demo("push_red.mp4", 64, 10.0, 8)
    (a,), (frames_a,) = run_episodes([env], agent, demo, seeds=[5], instances=[3], stop_on_success=True)
    (b,), (frames_b,) = run_episodes([env], agent, demo, seeds=[5], instances=[3], stop_on_success=True)
    assert a["steps"] == 3 and agent.plans == 2  # replanned after 2 of the 3 steps
    assert np.array_equal(frames_a, frames_b) and a["success"] == b["success"]
    env.close()


def test_pick_cost_keeps_the_future_nearest_the_demos_end(push_red_models, monkeypatch):
    sim = VideoSimulator.from_pretrained(push_red_models[0])
    demo = np.zeros((8, 64, 64, 3), np.uint8)
    demo[-1] = 200  # the demo ends on a light frame; candidate 2 imagines it, 0 and 1 do not
    futures = np.stack([np.full((4, 64, 64, 3), v, np.uint8) for v in (0, 90, 200)])[None]
    monkeypatch.setattr(sim, "imagine_batch", lambda *a, **k: futures)
    idm = InverseDynamics.from_pretrained(push_red_models[1])
    agent = ImitationAgent(sim, idm, ImitationConfig(n_candidates=3, pick="cost"), VideoCost("mse", (64, 64, 3)))
    agent.reset([demo[0]], demo=demo, seeds=[0])
    agent.act([demo[0]])
    assert agent.imagined[0][0].min() == 200 and agent.plans == 1
    with pytest.raises(ValueError, match="--n-candidates >= 2"):
        ImitationConfig(pick="cost")
    with pytest.raises(ValueError, match="needs a cost"):
        ImitationAgent(sim, idm, ImitationConfig(n_candidates=2, pick="cost"))


def test_action_prior_scores_the_demos_actions_highest():
    prior = ActionPrior({"type": "discrete", "n": 4}, np.array([[1], [1], [1], [2]]))
    logp = prior.log_prob(np.array([[0], [1], [2]]))
    assert logp[1] > logp[2] > logp[0] and np.isclose(np.exp(prior.log_freq[0]).sum(), 1)
    box = ActionPrior({"type": "box", "shape": [2], "low": [-1, -1], "high": [1, 1]}, np.array([[0.5, 0], [0.5, 0.02]]))
    assert box.log_prob(np.array([0.5, 0.0])) > box.log_prob(np.array([-0.5, 0.0]))
    assert np.all(box.std >= 0.2)  # a tenth of the range: a demo that repeats one action still ranks others


def test_pick_demo_actions_keeps_the_future_that_acts_like_the_demo(crafter_models, monkeypatch):
    sim = VideoSimulator.from_pretrained(crafter_models[0])
    idm = InverseDynamics.from_pretrained(crafter_models[1])
    # a stand-in for a trained IDM: it reads action k from a transition into frames of brightness ~100 k
    monkeypatch.setattr(idm, "predict", lambda f: (np.round(np.asarray(f)[:, 1:].mean((2, 3, 4)) / 100)[..., None],
                                                   np.zeros(np.shape(f)[:2])[:, 1:]))
    demo = np.full((16, 64, 64, 3), 200, np.uint8)  # the demo does action 2 throughout
    futures = np.stack([np.full((4, 64, 64, 3), v, np.uint8) for v in (0, 100, 200)])[None]
    monkeypatch.setattr(sim, "imagine_batch", lambda *a, **k: futures)
    agent = ImitationAgent(sim, idm, ImitationConfig(n_candidates=3, pick="demo-actions"))
    agent.reset([demo[0]], demo=demo, seeds=[0])
    assert agent.act([demo[0]]) == [2] and agent.imagined[0][0].min() == 200
    agent.reset([demo[0]], seeds=[0])  # no demo to score against: the IDM's pick (all futures tie: the first)
    assert agent.act([demo[0]]) == [0] and agent.imagined[0][0].max() == 0


def test_demo_actions_agent_draws_only_the_demos_actions(crafter_models, tmp_path, capsys):
    idm = InverseDynamics.from_pretrained(crafter_models[1])
    demo = load_demo("walk_left.mp4", 64, None, 2)
    seen = set(idm.label(demo)[:, 0].astype(int).tolist())
    agent = DemoActionAgent(idm, 2)
    agent.reset([demo[0]] * 2, demo=demo, seeds=[3, 4])
    acted = [agent.act([demo[0]] * 2) for _ in range(30)]
    assert {a for pair in acted for a in pair} <= seen  # unsmoothed: an action the demo never takes is never drawn
    agent.reset([demo[0]] * 2, demo=demo, seeds=[3, 4])
    assert [agent.act([demo[0]] * 2) for _ in range(30)] == acted  # same seed, same actions
    summary = main(agent_cfg(crafter_models, tmp_path / "da", env="crafter", agent="demo-actions",
                             demo="walk_left.mp4", max_steps=4))
    assert summary["episodes"] == 1 and summary["mean_steps"] == 4
    with pytest.raises(SystemExit) as e:
        run(main, RunAgentConfig, ["--env", "crafter", "--agent", "demo-actions", "--idm", str(crafter_models[1]),
                                   "--out", str(tmp_path / "none")])
    assert e.value.code == 2 and "pass --demo" in capsys.readouterr().err and not (tmp_path / "none").exists()


def test_imitation_prompts_with_the_demos_end(push_red_models, monkeypatch):
    sim = VideoSimulator.from_pretrained(push_red_models[0])
    seen = []
    monkeypatch.setattr(sim, "imagine_batch", lambda demos, *a, **k: seen.append(demos) or np.zeros((1, 1, 4, 64, 64, 3), np.uint8))
    agent = ImitationAgent(sim, InverseDynamics.from_pretrained(push_red_models[1]), ImitationConfig(n_demos=2))
    demo = np.arange(20, dtype=np.uint8)[:, None, None, None] * np.ones((1, 64, 64, 3), np.uint8)
    agent.reset([demo[0]], demo=demo, seeds=[0])
    agent.act([demo[0]])
    assert [int(c[0, 0, 0, 0]) for c in seen[0]] == [4, 12] and len(seen[0][1]) == 8  # frames 4-11, 12-19


@pytest.mark.parametrize("agent", ["random", "expert"])
def test_baselines_need_no_model(agent, tmp_path):
    summary = main(build(RunAgentConfig, dict(env="crafter", agent=agent, episodes=2, out=tmp_path / agent)))
    assert summary["episodes"] == 2
    if agent == "expert":
        assert summary["success_rate"] == 1.0


def _bad_demos(tmp_path):
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"not a video")
    empty = tmp_path / "empty.mp4"
    with av.open(str(empty), "w") as c:
        c.add_stream("libx264", rate=10)
    short = tmp_path / "short.mp4"
    write(short, np.zeros((3, 64, 64, 3), np.uint8))
    return {"missing": tmp_path / "nope.mp4", "corrupt": junk, "empty": empty, "short": short}


def _broken_model(case: str, models, tmp_path) -> list[str]:
    """``--model``/``--idm`` flags of a copy of the tiny models with one file broken as ``case`` says."""
    model, idm = shutil.copytree(models[0], tmp_path / "model"), shutil.copytree(models[1], tmp_path / "idm")
    if case.startswith("truncated"):  # a copy or download cut short
        weights = {"truncated_decoder": model / "decoder" / WEIGHTS_NAME, "truncated_idm": idm / WEIGHTS_NAME,
                   "truncated_tokenizer": model / "tokenizer" / "diffusion_pytorch_model.safetensors"}[case]
        weights.write_bytes(weights.read_bytes()[:1000])
    else:
        config = model / "decoder" / "config.json"
        saved = json.loads(config.read_text())
        saved.update({"newer_version": {"version": 99}, "wrong_type": {"n_layer": "two"}}[case])
        config.write_text(json.dumps(saved))
    return ["--model", str(model), "--idm", str(idm)]


BROKEN = ("truncated_decoder", "truncated_idm", "truncated_tokenizer", "newer_version", "wrong_type")
PROBLEM = {"truncated_decoder": "model.safetensors: unreadable weights", "truncated_idm": "unreadable weights",
           "truncated_tokenizer": "unreadable tokenizer", "newer_version": "written by a newer vidit",
           "wrong_type": "wrong field types: n_layer 'two'"}


@pytest.mark.parametrize("case", ["missing", "corrupt", "empty", "short", "other_env", "other_actions",
                                  "episodes", "replan", *BROKEN])
def test_bad_input_is_one_line_and_writes_nothing(case, crafter_models, push_red_models, tmp_path, capsys):
    out = tmp_path / "out"
    args = ["--env", "crafter", "--model", str(crafter_models[0]), "--idm", str(crafter_models[1]),
            "--out", str(out), "--demo", "chop_wood.mp4"]
    demos = _bad_demos(tmp_path)
    extra = {"other_env": ["--model", str(push_red_models[0])], "other_actions": ["--idm", str(push_red_models[1])],
             "episodes": ["--episodes", "0"], "replan": ["--replan-every", "9"]}
    if case in BROKEN:
        args += _broken_model(case, crafter_models, tmp_path)
    else:
        args += ["--demo", str(demos[case])] if case in demos else extra[case]
    with pytest.raises(SystemExit) as e:
        run(main, RunAgentConfig, args)
    err = capsys.readouterr().err.strip()
    assert e.value.code == 2 and len(err.splitlines()) == 1 and "Traceback" not in err
    assert PROBLEM.get(case, "") in err
    assert not (out / "metrics.json").exists() and not list(out.glob("*.mp4")) if out.exists() else True


@pytest.mark.parametrize("env, demo", [("robodesk", "chop_wood.mp4"), ("crafter", "push_green.mp4")])
def test_a_demo_of_another_env_is_refused_in_one_line(env, demo, tmp_path, capsys):
    with pytest.raises(SystemExit) as e:  # the shipped models: their tokenizers tell the envs apart
        run(main, RunAgentConfig, ["--env", env, "--demo", demo, "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err.strip()
    assert e.value.code == 2 and len(err.splitlines()) == 1 and "does not look like" in err
    assert not (tmp_path / "out").exists()
    # the env's own demos pass, also from a start whose first frame reconstructs far better than the demo
    # (Crafter seed 1000: 34 dB against walk_left's 22.6 dB; a 10 dB margin once refused it)
    own = {"robodesk": ("push_green.mp4", 0), "crafter": ("walk_left.mp4", 1000)}[env]
    sim = VideoSimulator.from_pretrained(env)
    check_demo_env(sim, load_demo(own[0], 64, None, 8), envs.make(env), own[1], own[0])


def test_minerl_is_a_clear_error_pointing_at_crafter(capsys):
    with pytest.raises(SystemExit) as e:
        run(main, RunAgentConfig, ["--env", "minerl", "--demo", "chop_wood.mp4"])
    err = capsys.readouterr().err
    assert e.value.code == 2 and "--env crafter" in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("name", sorted(RECIPES))
def test_shipped_demos_load_at_any_size(name):
    frames = load_demo(name, 64, 10.0, 8)
    assert frames.shape == (16, 64, 64, 3)
    assert load_demo(name, 32, 5.0, 8).shape == (8, 32, 32, 3)  # resized, and stride 2 for a 5 fps model


def test_imitation_bench_quick_writes_its_table_and_resumes(crafter_models, tmp_path):
    from experiments.imitation_bench import ImitationBenchConfig
    from experiments.imitation_bench import main as bench
    cfg = ImitationBenchConfig(out=tmp_path / "bench", tasks=("chop_wood",), quick=True, batch=2,
                               crafter_model=str(crafter_models[0]), crafter_idm=str(crafter_models[1]))
    bench(cfg)
    rows = json.loads((tmp_path / "bench" / "imitation_bench.json").read_text())["rows"]
    assert [(r["task"], r["setting"]) for r in rows] == [
        ("chop_wood", "in-class demo"), ("chop_wood", "no demo"), ("chop_wood", "contrastive demo"),
        ("chop_wood", "random demo"), ("chop_wood", "random policy"), ("chop_wood", "expert policy")]
    assert all(r["episodes"] == 2 for r in rows) and (tmp_path / "bench" / "imitation_bench.png").is_file()
    done = tmp_path / "bench" / "runs" / "chop_wood_in-class_demo" / "metrics.json"
    stamp = done.stat().st_mtime_ns
    bench(cfg)  # a rerun reuses finished settings
    assert done.stat().st_mtime_ns == stamp


def test_finished_run_matches_runs_saved_before_a_setting_was_added(tmp_path):
    cfg = build(RunAgentConfig, dict(env="crafter", agent="random", episodes=1, out=tmp_path))
    saved = config_json(cfg)
    del saved["guidance"], saved["rounds"]  # settings added to run_agent after this run: now at their defaults
    (tmp_path / "metrics.json").write_text(json.dumps({"config": saved, "episodes": []}))
    assert finished_run(cfg) is not None
    assert finished_run(build(RunAgentConfig, dict(env="crafter", agent="random", episodes=1, out=tmp_path,
                                                   guidance=2.0))) is None
    assert finished_run(build(RunAgentConfig, dict(env="crafter", agent="random", episodes=2, out=tmp_path))) is None


def test_every_agent_choice_has_a_builder():
    import typing

    from agents.run_agent import AGENTS, AgentName
    assert set(AGENTS) == set(typing.get_args(AgentName))
