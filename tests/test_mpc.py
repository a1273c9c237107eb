"""The MPC agent: costs, the simulator oracle pressing the button, ``run_agent --agent mpc`` (goal from a
demo, bad input), ``mpc_bench --quick`` end to end with resume, a killed ``mpc_bench`` stopping its
workers, ``compare_bench`` and ``mpc_trace``, on tiny untrained world models."""
import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

import envs
from agents.costs import VideoCost
from agents.mpc import MPCAgent, MPCConfig, ModelPredictor
from agents.oracle import EnvOracle
from agents.run_agent import RunAgentConfig, main, run_episodes
from envs.video import read
from experiments import compare_bench, cost_ranking, mpc_bench, mpc_trace
from vidit.cli import UsageError, build, run
from worldmodel.classifier import SuccessClassifier, load_classifiers
from worldmodel.simulator import VideoSimulator

EASY = 4  # the scripted expert presses this instance's button on its third step


def test_costs_rank_frames_by_goal_distance_and_success():
    goal = np.full((64, 64, 3), 200, np.uint8)
    frames = np.stack([np.full((2, 64, 64, 3), v, np.uint8) for v in (0, 150, 200)])
    mse = VideoCost("mse", (64, 64, 3))
    assert list(np.argsort(mse(frames, goal))) == [2, 1, 0]
    clf = SuccessClassifier.from_pretrained("push-red")
    env = envs.make("push_red")
    start, info = env.reset(options={"instance": 0})
    env.close()
    both = VideoCost("classifier", (64, 64, 3), clf)  # without a goal: classifier only
    pressed = np.stack([np.stack([start] * 2), np.stack([info["goal"]] * 2)])
    costs = both(pressed)
    assert costs[1] < costs[0]  # the goal frame shows the lit button: likelier success, lower cost
    two = load_classifiers("push-red+push-red-k8")  # several classifiers: their logits add up
    summed = VideoCost("classifier", (64, 64, 3), two)
    k8 = VideoCost("classifier", (64, 64, 3), two[1])
    np.testing.assert_allclose(summed(pressed), costs + k8(pressed), rtol=1e-5)
    quarter = load_classifiers("0.25*push-red")[0]  # a weighted term scales its logits
    np.testing.assert_allclose(quarter.logits(pressed), 0.25 * clf.logits(pressed), rtol=1e-5, atol=1e-5)
    for bad in ("0*push-red", "x*push-red", "push-red+", "-1*push-red"):
        with pytest.raises(ValueError, match="WEIGHT\\*NAME"):
            load_classifiers(bad)
    with pytest.raises(ValueError, match=r"expected \(64, 64, 3\)"):
        mse(frames, np.zeros((32, 32, 3), np.uint8))
    with pytest.raises(ValueError, match="needs a goal image"):
        mse.check_goal(None)


def test_cost_ranking_scores_costs_on_real_and_predicted_frames(push_red_models, tmp_path):
    cfg = cost_ranking.CostRankingConfig(out=tmp_path / "cr", model=str(push_red_models[0]), instances=1,
                                         samples=8, horizon=1, std_scales=(1.0,))
    rows = cost_ranking.main(cfg)
    assert {(r["frames"], r["cost"]) for r in rows} == {(f, c) for f in ("real", "model") for c in ("mse", "classifier")}
    for r in rows:
        assert -1 <= r["rho"] <= 1 and -1 <= r["mppi_cos"] <= 1 and r["top4_cm"] <= r["best4_cm"] + 1e-9
    assert (tmp_path / "cr" / "cost_ranking.md").is_file()


def test_oracle_presses_the_button_on_an_easy_instance():
    env = envs.make("push_red", max_episode_steps=6)
    cost = VideoCost("classifier", (64, 64, 3), SuccessClassifier.from_pretrained("push-red"))
    oracle = EnvOracle([env], workers=0)
    agent = MPCAgent(oracle, cost, MPCConfig(samples=8, horizon=3), env.action_space)
    (row,), (frames,) = run_episodes([env], agent, None, seeds=[1], instances=[EASY], stop_on_success=True)
    assert row["success"] and row["steps"] <= 6
    assert row["min_distance"] <= row["final_distance"] < 0.1  # at the button (27 cm at the start)
    assert len(row["distances"]) == row["steps"] and row["distances"][-1] == row["final_distance"]
    assert frames.shape[2] == 3 * 64  # real | predicted | goal
    assert len(agent.plan_seconds) == row["steps"]
    env.close()


def test_model_rollouts_take_actions_of_the_models_shape(push_red_models):
    sim = VideoSimulator.from_pretrained(push_red_models[0])
    context = np.zeros((2, 64, 64, 3), np.uint8)
    assert sim.rollout(context, np.zeros((3, 2, 5), np.float32)).shape == (3, 2, 64, 64, 3)
    with pytest.raises(ValueError, match=r"expects float actions of shape \(5,\)"):
        sim.rollout(context, np.zeros((3, 2, 4), np.float32))


def test_whole_episode_context_predicts_what_the_window_still_holds(push_red_models):
    """``--context-frames 0``: every observed frame is context; the rollout shrinks to fit the window."""
    sim = VideoSimulator.from_pretrained(push_red_models[0])
    seen = []

    class Spy(ModelPredictor):
        def __call__(self, row, context, past_actions, actions, seed):
            out = super().__call__(row, context, past_actions, actions, seed)
            seen.append((len(context), 0 if past_actions is None else len(past_actions), out.shape[1]))
            return out

    frames = [np.full((64, 64, 3), 10 * t, np.uint8) for t in range(17)]
    agent = MPCAgent(Spy(sim), VideoCost("mse", (64, 64, 3)), MPCConfig(samples=2, horizon=10, context_frames=0),
                     gym.spaces.Box(-1, 1, (5,), np.float32))
    agent.reset([frames[0]], goals=[frames[-1]])
    for t in range(16):
        agent.act([frames[t]])
    assert sim.max_frames == 16
    assert seen == [(t + 1, t, min(10, 16 - min(t + 1, 15))) for t in range(16)]


def test_futures_score_each_sample_over_imagined_futures(push_red_models):
    """``--futures 2``: every sample is imagined twice in one batch and scored by the mean of its costs."""
    sim = VideoSimulator.from_pretrained(push_red_models[0])
    seen, got = [], []

    class Spy(ModelPredictor):
        def __call__(self, row, context, past_actions, actions, seed):
            seen.append((actions, super().__call__(row, context, past_actions, actions, seed)))
            return seen[-1][1]

    cost = VideoCost("mse", (64, 64, 3))
    box = gym.spaces.Box(-1, 1, (5,), np.float32)
    agent = MPCAgent(Spy(sim), cost, MPCConfig(samples=3, horizon=2, futures=2), box)
    agent.reset([np.zeros((64, 64, 3), np.uint8)], goals=[np.full((64, 64, 3), 255, np.uint8)])
    samples = np.random.default_rng(0).uniform(-1, 1, (3, 2, 5)).astype(np.float32)

    def plan(cost_fn):
        got.append(cost_fn(samples))
        return samples[0, 0]

    agent.planners[0].plan = plan
    agent.act([np.zeros((64, 64, 3), np.uint8)])
    actions, frames = seen[0]
    assert actions.shape == (6, 2, 5) and np.array_equal(actions[::2], samples)
    assert np.array_equal(actions[1::2], samples)
    assert not np.array_equal(frames[0], frames[1])  # one sample, two different futures
    per_future = cost(frames, np.full((64, 64, 3), 255, np.uint8)).reshape(3, 2)
    assert not np.allclose(per_future.min(1), per_future.mean(1))
    np.testing.assert_allclose(got[0], per_future.mean(1))
    with pytest.raises(ValueError, match="--futures >= 1"):
        MPCConfig(futures=0)


def test_run_agent_mpc_with_a_goal_imagined_from_a_demo(push_red_models, tmp_path):
    summary = main(build(RunAgentConfig, dict(env="push_red", agent="mpc", demo="push_red.mp4",
                                              model=str(push_red_models[0]), samples=4, horizon=2, max_steps=2,
                                              out=tmp_path / "out", seed=3, cost="mse", n_candidates=2)))
    assert summary["episodes"] == 1 and summary["mean_plan_s"] > 0
    # the mse cost needs no classifier, but the shipped one still picks the likeliest of the imagined goals
    assert json.loads((tmp_path / "out" / "metrics.json").read_text())["classifier"] == "push-red-k8"
    video = read(tmp_path / "out" / "episode_000.mp4")
    assert video.shape == (3, 256, 3 * 256, 3)  # real | predicted | imagined goal, x4
    assert video[:, :, 512:].max() > 0


@pytest.mark.parametrize("case", ["goal_size", "goal_missing", "discrete_env", "std", "init_mean"])
def test_mpc_bad_input_is_one_line(case, push_red_models, tmp_path, capsys):
    from PIL import Image
    small = tmp_path / "small.png"
    Image.fromarray(np.zeros((32, 48, 3), np.uint8)).save(small)
    args = {"goal_size": ["--goal", str(small)], "goal_missing": ["--goal", str(tmp_path / "nope.png")],
            "discrete_env": ["--env", "crafter"], "std": ["--std", "0.5", "0.5"],
            "init_mean": ["--init-mean", "0", "-1"]}[case]
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as e:
        run(main, RunAgentConfig, ["--env", "push_red", "--agent", "mpc", "--model", str(push_red_models[0]),
                                   "--out", str(out), *args])
    err = capsys.readouterr().err.strip()
    assert e.value.code == 2 and len(err.splitlines()) == 1 and "Traceback" not in err
    expected = {"goal_size": "(64, 64, 3)", "discrete_env": "continuous", "std": "--std has 2 values",
                "init_mean": "--init-mean has 2 values"}
    assert expected.get(case, "") in err
    assert not out.exists() or not any(out.iterdir())


def test_mpc_bench_quick_runs_resumes_grows_and_refuses_other_settings(push_red_models, tmp_path, capsys):
    args = ["--quick", "--out", str(tmp_path / "bench"), "--model", str(push_red_models[0]),
            "--settings", "mpc", "random", "--workers", "2"]
    rows = run(mpc_bench.main, mpc_bench.MPCBenchConfig, args)
    ours = {r["setting"]: r for r in rows if r["source"] == "ours"}
    assert set(ours) == {"mpc", "random"} and ours["mpc"]["episodes"] == 2 and ours["mpc"]["plan_s"] != "-"
    assert all(0 <= r["near_miss"] <= 1 - r["success"] for r in ours.values())
    assert any(r["setting"] == "iVideoGPT" for r in rows)
    for name in ("mpc_bench.md", "mpc_bench.csv", "mpc_bench.json", "mpc_bench.png"):
        assert (tmp_path / "bench" / name).is_file()
    videos = sorted((tmp_path / "bench" / "runs").glob("*/*/episode_000.mp4"))
    assert len(videos) == 4
    stamp = {v: v.stat().st_mtime_ns for v in videos}
    (videos[0].parent / "metrics.json").unlink()  # as if killed during that episode
    capsys.readouterr()
    run(mpc_bench.main, mpc_bench.MPCBenchConfig, args[:-2] + ["--workers", "1"])
    assert "3 already done, 1 to run" in capsys.readouterr().out
    assert all(v.stat().st_mtime_ns == stamp[v] for v in videos[1:])
    saved = tmp_path / "bench" / "bench_config.json"  # from before --init-mean existed: resumes at its default
    saved.write_text(json.dumps({k: v for k, v in json.loads(saved.read_text()).items() if k != "init_mean"}))
    shutil.copytree(tmp_path / "bench", tmp_path / "moved")  # a moved results folder still resumes
    run(mpc_bench.main, mpc_bench.MPCBenchConfig, args[:2] + [str(tmp_path / "moved")] + args[3:])
    assert "4 already done, 0 to run" in capsys.readouterr().out
    rows = run(mpc_bench.main, mpc_bench.MPCBenchConfig, args + ["--instances", "1"])  # a subset: no new episode
    assert "2 already done, 0 to run" in capsys.readouterr().out
    assert {r["setting"]: r["episodes"] for r in rows if r["source"] == "ours"} == {"mpc": 1, "random": 1}
    with pytest.raises(SystemExit) as e:
        run(mpc_bench.main, mpc_bench.MPCBenchConfig, args + ["--planner", "cem"])
    assert e.value.code == 2 and "other settings (planner" in capsys.readouterr().err
    assert json.loads(saved.read_text())["planner"] == "mppi"
    episodes = (tmp_path / "bench" / "runs").glob("*/*/metrics.json")
    ran = {json.loads(m.read_text())["episodes"][0]["seed"] for m in episodes}
    assert ran == {1000, 1001}  # seed 1 draws its own noise on each instance
    saved.write_text(json.dumps({k: v for k, v in json.loads(saved.read_text()).items() if k != "episode_seed"}))
    with pytest.raises(SystemExit) as e:  # episodes seeded by the run seed alone (before 2026-11-27): not mixed in
        run(mpc_bench.main, mpc_bench.MPCBenchConfig, args)
    assert e.value.code == 2 and "other settings (episode_seed" in capsys.readouterr().err
    cmp = [str(tmp_path / "bench"), str(tmp_path / "moved"), "--out", str(tmp_path / "cmp")]
    same = run(compare_bench.main, compare_bench.CompareBenchConfig, cmp)  # the same episodes: no difference
    assert same[0]["episodes"] == 2 and same[0]["difference"] == 0 and same[0]["sign_test_p"] == 1.0
    assert (tmp_path / "cmp" / "compare_bench.png").is_file()
    with pytest.raises(SystemExit) as e:
        run(compare_bench.main, compare_bench.CompareBenchConfig, cmp[:1] + [str(tmp_path / "nope")])
    assert e.value.code == 2 and "no finished 'mpc' episodes" in capsys.readouterr().err


def _stat(pid: int | str) -> tuple[str, int] | None:
    """(state, parent pid) of a process from /proc, None once it is gone."""
    try:
        state, ppid = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[:2]
        return state, int(ppid)
    except (OSError, ValueError):
        return None


def _workers(parent: int) -> set[int]:
    """Live multiprocessing workers (spawned, so ``spawn_main`` in their command line) of ``parent``."""
    out = set()
    for proc in Path("/proc").iterdir():
        stat = _stat(proc.name) if proc.name.isdigit() else None
        if stat and stat[0] != "Z" and stat[1] == parent:
            try:
                if b"spawn_main" in (proc / "cmdline").read_bytes():
                    out.add(int(proc.name))
            except OSError:
                pass
    return out


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads processes from /proc")
def test_mpc_bench_held_out_runs_instances_30_on(tmp_path):
    cfg = build(mpc_bench.MPCBenchConfig, dict(out=tmp_path, held_out=True, instances=3, seeds=(5,),
                                               settings=("mpc", "oracle"), oracle_instances=1))
    grid = {(s, i): c for s, _, i, c in mpc_bench.episode_configs(cfg)}
    assert set(grid) == {("mpc", 30), ("mpc", 31), ("mpc", 32), ("oracle", 30)}
    assert grid["mpc", 31].seed == 5031 and grid["mpc", 31].instance == 31  # run_agent --instance 31 --seed 5031
    assert grid["mpc", 31].out.name == "seed5_instance31"


def test_killed_mpc_bench_takes_its_workers_with_it(push_red_models, tmp_path):
    cmd = [sys.executable, "-m", "experiments.mpc_bench", "--out", str(tmp_path / "bench"), "--seeds", "1",
           "--model", str(push_red_models[0]), "--settings", "mpc", "--instances", "6", "--samples", "4",
           "--horizon", "2", "--workers", "2"]
    with open(tmp_path / "stderr", "w") as err:
        bench = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err)
        deadline = time.monotonic() + 120
        while len(workers := _workers(bench.pid)) < 2:
            assert bench.poll() is None and time.monotonic() < deadline, "mpc_bench started no workers"
            time.sleep(0.2)
        time.sleep(2)  # into their first episodes
        bench.send_signal(signal.SIGTERM)
        assert bench.wait(timeout=60) == 130
    assert (tmp_path / "stderr").read_text().rstrip().endswith("error: interrupted")
    done = len(list((tmp_path / "bench").glob("runs/*/*/metrics.json")))
    time.sleep(5)  # a worker left running would finish its episode by now
    assert not [pid for pid in workers if (_stat(pid) or ("Z",))[0] != "Z"]
    assert len(list((tmp_path / "bench").glob("runs/*/*/metrics.json"))) == done < 6


def test_compare_bench_pairs_episodes_by_seed_and_instance():
    base = {(s, i): i < 5 for s in (1, 2) for i in range(10)}  # presses instances 0-4 on both seeds
    cand = {**base, **{(s, i): True for s in (1, 2) for i in (5, 6, 7)}, (9, 0): True}  # 3 more; one unpaired
    rng = np.random.default_rng(0)
    row = compare_bench.compare(base, cand, 1000, rng)
    assert row["episodes"] == 20 and row["seeds"] == 2 and row["difference"] == 0.3
    assert row["only_baseline"] == 0 and row["only_run"] == 6 and row["sign_test_p"] == round(2 / 2 ** 6, 3)
    assert 0 <= row["ci95_low"] < 0.3 < row["ci95_high"] <= 0.7  # instances resampled, seeds kept together
    assert compare_bench.sign_test(3, 3) == 1.0 and compare_bench.sign_test(0, 0) == 1.0
    with pytest.raises(UsageError, match="share no"):
        compare_bench.compare(base, {(3, 0): True}, 1000, rng)


def test_mpc_trace_records_arm_button_and_predictions_each_step(push_red_models, tmp_path, capsys):
    args = ["--model", str(push_red_models[0]), "--samples", "4", "--horizon", "2", "--max-steps", "2",
            "--instance", str(EASY), "--threads", "1", "--out", str(tmp_path / "trace")]
    rows = run(mpc_trace.main, mpc_trace.MPCTraceConfig, args)
    assert [r["step"] for r in rows] == [1, 2]  # 27 cm from the button: no press within 2 steps
    for r in rows:
        assert abs(np.hypot(r["offset_x"], np.hypot(r["offset_y"], r["offset_z"])) - r["distance_cm"]) < 0.2
        assert 0 <= r["predicted_lit"] <= 1 and not r["button_down"] and len(r["action"].split()) == 5
    assert (tmp_path / "trace" / "mpc_trace.csv").is_file()
    with pytest.raises(SystemExit) as e:
        run(mpc_trace.main, mpc_trace.MPCTraceConfig, args[:-1] + [str(tmp_path / "bad"), "--env", "crafter"])
    err = capsys.readouterr().err
    assert e.value.code == 2 and len(err.splitlines()) == 1 and "push_red" in err
    assert not (tmp_path / "bad").exists()


def _episodes(out: Path) -> dict[str, dict]:
    """Each episode's metrics, by run folder, without its wall times."""
    rows = {}
    for m in sorted(out.glob("runs/*/*/metrics.json")):
        ep = json.loads(m.read_text())["episodes"][0]
        rows[str(m.parent.relative_to(out))] = {k: v for k, v in ep.items() if "second" not in k and not k.endswith("_s")}
    return rows


def test_mpc_bench_on_a_local_ray_instance_matches_local_workers_and_resumes(push_red_models, tmp_path):
    pytest.importorskip("ray", reason="the Ray executor is the optional extra vidit[ray]")
    args = ["--quick", "--model", str(push_red_models[0]), "--settings", "mpc", "random"]
    run(mpc_bench.main, mpc_bench.MPCBenchConfig, args + ["--out", str(tmp_path / "local")])
    ray_args = args + ["--out", str(tmp_path / "ray"), "--executor", "ray", "--workers", "2"]
    run(mpc_bench.main, mpc_bench.MPCBenchConfig, ray_args)
    local = _episodes(tmp_path / "local")
    assert len(local) == 4 and _episodes(tmp_path / "ray") == local
    next(iter((tmp_path / "ray").glob("runs/mpc/*/metrics.json"))).unlink()  # as if killed during that episode
    resumed = subprocess.run([sys.executable, "-m", "experiments.mpc_bench", *ray_args], capture_output=True,
                             text=True, timeout=300)  # the CLI, in a fresh process with its own Ray instance
    assert resumed.returncode == 0 and "3 already done, 1 to run with Ray tasks on 2 CPU(s)" in resumed.stdout
    assert _episodes(tmp_path / "ray") == local


def test_ray_executor_without_ray_is_one_line_naming_the_extra(push_red_models, tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # as where the extra is not installed
    with pytest.raises(SystemExit) as e:
        run(mpc_bench.main, mpc_bench.MPCBenchConfig, ["--quick", "--out", str(tmp_path / "b"), "--executor", "ray"])
    assert e.value.code == 2 and "pip install 'vidit[ray]'" in capsys.readouterr().err
    assert not (tmp_path / "b").exists()

