"""``demo_bench`` (which task does the demo make the agent do?): the confusion counting on hand-made
results, the episode grid and its seeds, Crafter ``--quick`` end to end with tiny untrained models (the
expert does its own task, tables + heatmap, resume without rerunning, another config refused), one tiny
RoboDesk ``mpc-demo`` episode pair, and bad input refused in one line before anything is written."""
import json

import pytest

from agents.imitation import ImitationConfig
from experiments.demo_bench import DemoBenchConfig, episode_configs, main, summarize, wrong_first
from experiments.imitation_bench import wilson
from vidit.cli import UsageError, run

CRAFTER_TASKS = ("chop_wood", "eat_cow", "collect_sapling", "drink_water", "walk_left", "walk_right", "walk_up",
                 "walk_down")


def test_confusion_counts_each_task_done_none_and_the_diagonal_per_row():
    # tasks done, each with its first step: a, 1 pressed b before a; b, 1 pressed c after b
    results = {("imitate", "a", 0): {"a": 3}, ("imitate", "a", 1): {"a": 5, "b": 2}, ("imitate", "a", 2): {},
               ("imitate", "a", 3): {"b": 4}, ("imitate", "b", 0): {"b": 1}, ("imitate", "b", 1): {"b": 3, "c": 9},
               ("random", "a", 0): {}, ("random", "b", 0): {"a": 1}}
    rows, matrices = summarize(results, ("imitate", "random", "expert"), ("a", "b"), ("a", "b", "c"))
    a, b = matrices["imitate"]
    # the episode doing a and b counts in both columns: row a sums to 1.25
    assert a == {"demo_task": "a", "episodes": 4, "a": 0.5, "b": 0.5, "c": 0.0, "none": 0.25, "own": 0.5, "other": 0.5}
    assert b == {"demo_task": "b", "episodes": 2, "a": 0.0, "b": 1.0, "c": 0.5, "none": 0.0, "own": 1.0, "other": 0.5}
    imitate, random = rows  # expert ran no episode: no row
    low, high = wilson(4, 6)  # 4 of the 6 pooled episodes did their own task
    assert imitate == {"setting": "imitate", "episodes": 6, "diagonal": 0.75,  # mean over rows, not pooled (4/6)
                       "ci_low": round(low, 3), "ci_high": round(high, 3),
                       "other_demos": 0.25, "demo_gain": 0.5,  # b after a's demo: 0.5; a after b's: 0
                       "wrong_task": 0.5, "wrong_first": 0.333, "none": 0.167}  # c after b is not first
    assert random["diagonal"] == 0 and random["wrong_task"] == 0.5 and random["none"] == 0.5
    assert random["wrong_first"] == 0.5
    assert wrong_first("a", {"a": 3, "b": 3}) and wrong_first("a", {"a": None, "b": 3}) is None  # unrecorded
    assert (random["other_demos"], random["demo_gain"]) == (0.5, -0.5)
    assert matrices["random"][1]["a"] == 1.0 and matrices["random"][0]["none"] == 1.0


def test_episode_grid_seeds_demos_and_agents(tmp_path):
    desk = episode_configs(DemoBenchConfig(out=tmp_path))
    assert len(desk) == 7 * 3 * 30
    by = {(s, t, i): c for s, t, i, c in desk}
    mpc = by["mpc-demo", "push_blue", 29]
    assert (mpc.agent, mpc.demo, mpc.task, mpc.seed, mpc.instance) == ("mpc", "push_blue.mp4", "push_blue", 29, 29)
    assert mpc.out == tmp_path / "runs" / "mpc-demo" / "push_blue" / "instance29"
    assert all(not c.stop_on_success and c.max_steps == 15 and c.episodes == 1 for c in by.values())
    assert by["no-demo", "push_red", 0].demo is None and by["no-demo", "push_red", 0].agent == "imitate"
    assert by["no-demo", "push_blue", 0].out == by["no-demo", "push_red", 0].out  # task-blind: one episode, every row
    assert by["random-demo", "push_green", 3].demo == "push_red_random.mp4"
    assert (by["demo-actions", "push_blue", 3].agent, by["demo-actions", "push_blue", 3].demo) == (
        "demo-actions", "push_blue.mp4")
    assert (by["expert", "push_green", 3].agent, by["expert", "push_green", 3].seed) == ("expert", 3)
    assert by["random", "push_green", 3].seed == by["imitate", "push_green", 3].seed  # paired across settings
    assert len({c.seed for c in by.values()}) == 30  # one per instance, the same in every row
    crafter = DemoBenchConfig(env="crafter", out=tmp_path)
    assert "mpc-demo" not in crafter.settings and crafter.steps == 100 and crafter.seeds == 50
    grid = {(s, t, i): c for s, t, i, c in episode_configs(crafter)}
    assert len(grid) == 6 * 8 * 50 and grid["imitate", "walk_left", 7].seed == 7
    assert grid["no-demo", "chop_wood", 7].seed == grid["no-demo", "walk_left", 7].seed, "rows share their starts"
    assert grid["imitate", "walk_left", 7].demo == "walk_left.mp4"
    dev = {(s, t, i): c for s, t, i, c in episode_configs(DemoBenchConfig(out=tmp_path, instances=10, held_out=True))}
    assert {i for _, _, i in dev} == set(range(30, 40)) and dev["mpc-demo", "push_red", 31].instance == 31
    assert dev["imitate", "push_red", 31].out.name == "instance31"
    picked = {(s, t): c for s, t, i, c in episode_configs(DemoBenchConfig(
        out=tmp_path, instances=1, imitation=ImitationConfig(n_candidates=4, pick="cost", replan_every=2)))}
    imitation = {s: picked[s, "push_red"].imitation for s in ("imitate", "mpc-demo")}
    assert (imitation["imitate"].pick, imitation["imitate"].n_candidates, imitation["imitate"].replan_every) == (
        "cost", 4, 2)
    assert picked["no-demo", "push_red"].demo is None and imitation["mpc-demo"].n_candidates == 1
    crafter_dev = episode_configs(DemoBenchConfig(env="crafter", out=tmp_path, seeds=3, held_out=True))
    assert {i for _, _, i, _ in crafter_dev} == {1000, 1001, 1002}
    quick = DemoBenchConfig(env="robodesk", quick=True, out=tmp_path, samples=32, horizon=4)
    assert (quick.tasks, quick.instances, quick.steps, quick.samples, quick.horizon) == (
        ("push_red", "push_green"), 2, 3, 8, 2)


def test_crafter_quick_expert_does_its_task_resumes_and_refuses_another_config(crafter_models, tmp_path, capsys):
    out = tmp_path / "bench"
    args = ["--env", "crafter", "--quick", "--out", str(out), "--model", str(crafter_models[0]),
            "--idm", str(crafter_models[1]), "--tasks", "chop_wood", "walk_left",
            "--settings", "expert", "random", "imitate"]
    rows = run(main, DemoBenchConfig, args)
    by = {r["setting"]: r for r in rows}
    assert set(by) == {"expert", "random", "imitate"} and all(r["episodes"] == 4 for r in rows)
    saved = json.loads((out / "demo_bench.json").read_text())
    expert = saved["confusion"]["expert"]
    assert [r["demo_task"] for r in expert] == ["chop_wood", "walk_left"]
    assert all(r["own"] >= 0.5 for r in expert) and by["expert"]["diagonal"] >= 0.75, expert
    assert 0 <= by["expert"]["ci_low"] <= by["expert"]["diagonal"] <= by["expert"]["ci_high"] <= 1
    names = ["demo_bench.md", "demo_bench.csv", "demo_bench.json", "demo_bench.png", "bench_config.json"]
    names += [f"confusion_{s}.{ext}" for s in by for ext in ("md", "csv")]
    assert all((out / name).is_file() for name in names)
    md = (out / "demo_bench.md").read_text()
    assert "## expert" in md and "| demo_task | episodes | chop_wood |" in md and "none" in md
    metrics = sorted(out.glob("runs/*/*/*/metrics.json"))
    assert len(metrics) == 10  # random ignores the row's task: one episode per seed serves both rows
    assert not (out / "runs" / "random" / "walk_left").exists()
    eps = {m.relative_to(out / "runs").parts[:3]: json.loads(m.read_text())["episodes"][0] for m in metrics}
    assert {p[2] for p in eps} == {"seed0", "seed1"}
    assert all(set(e["task_success"]) == set(CRAFTER_TASKS) for e in eps.values())
    # stop_on_success=False: the expert, done early, still runs the whole budget (it does not die in 20 steps)
    assert all(e["steps"] == 20 for p, e in eps.items() if p[0] == "expert")
    # the step each task was first done: those done at the end, each within the budget
    assert all(set(e.get("task_steps", {})) == {t for t, d in e["task_success"].items() if d} and
               all(1 <= s <= 20 for s in e.get("task_steps", {}).values()) for e in eps.values())
    assert any(e.get("task_steps") for p, e in eps.items() if p[0] == "expert")
    stamp = {m: m.stat().st_mtime_ns for m in metrics}
    capsys.readouterr()
    assert run(main, DemoBenchConfig, args) == rows
    assert "10 episodes, 10 already done, 0 to run" in capsys.readouterr().out
    metrics[0].unlink()  # as if killed during that episode
    run(main, DemoBenchConfig, args)
    assert "9 already done, 1 to run" in capsys.readouterr().out
    assert all(m.stat().st_mtime_ns == stamp[m] for m in metrics[1:])
    sub = run(main, DemoBenchConfig, args[:-3] + ["expert"])  # a subset of the episodes: nothing reruns
    assert "4 episodes, 4 already done, 0 to run" in capsys.readouterr().out
    assert [r["setting"] for r in sub] == ["expert"]
    config = (out / "bench_config.json").read_text()
    with pytest.raises(SystemExit) as e:
        run(main, DemoBenchConfig, args + ["--steps", "10"])
    err = capsys.readouterr().err.strip()
    assert e.value.code == 2 and len(err.splitlines()) == 1 and "other settings (steps: 20 -> 10)" in err
    assert (out / "bench_config.json").read_text() == config


def test_robodesk_mpc_demo_plans_from_the_tasks_demo(robodesk_models, tmp_path):
    wm, idm = robodesk_models
    out = tmp_path / "bench"
    rows = run(main, DemoBenchConfig, ["--env", "robodesk", "--quick", "--out", str(out), "--model", str(wm),
                                       "--idm", str(idm), "--tasks", "push_blue", "--instances", "1", "--steps", "2",
                                       "--settings", "mpc-demo", "expert", "--cost", "mse", "--samples", "4"])
    assert [(r["setting"], r["episodes"]) for r in rows] == [("mpc-demo", 1), ("expert", 1)]
    saved = json.loads((out / "runs/mpc-demo/push_blue/instance00/metrics.json").read_text())
    assert (saved["agent"], saved["demo"], saved["config"]["task"]) == ("mpc", "push_blue.mp4", "push_blue")
    episode = saved["episodes"][0]
    assert (episode["seed"], episode["instance"], episode["steps"]) == (0, 0, 2)
    assert set(episode["task_success"]) == {"push_red", "push_green", "push_blue"}
    assert (out / "confusion_mpc-demo.md").is_file() and (out / "demo_bench.png").is_file()


@pytest.mark.parametrize("case", ["setting", "task", "mpc_crafter", "instances_crafter", "seeds_robodesk",
                                  "instances_range", "no_model", "other_env_model"])
def test_bad_input_is_one_line_before_anything_is_written(case, crafter_models, tmp_path, capsys, monkeypatch):
    out = tmp_path / "bench"
    models = ["--model", str(crafter_models[0]), "--idm", str(crafter_models[1])]
    args, expected = {
        "setting": (["--env", "crafter", "--settings", "imitate", "dance"], "unknown settings ['dance']"),
        "task": (["--env", "crafter", "--tasks", "push_red"], "unknown tasks ['push_red'] for --env crafter"),
        "mpc_crafter": (["--env", "crafter", "--settings", "mpc-demo"], "mpc-demo and guided plan continuous actions"),
        "instances_crafter": (["--env", "crafter", "--instances", "3"], "--instances is not for --env crafter"),
        "seeds_robodesk": (["--env", "robodesk", "--seeds", "3"], "--seeds is not for --env robodesk"),
        "instances_range": (["--env", "robodesk", "--instances", "31"], "--instances must lie in [1, 30]"),
        "no_model": (["--env", "crafter", "--model", str(tmp_path / "nope")], "no world model at"),
        "other_env_model": (["--env", "robodesk", "--settings", "imitate"], "trained on vidit/Crafter-v0"),
    }[case]
    argv = ["--out", str(out), *models, *args] if case != "no_model" else ["--out", str(out), *args]
    monkeypatch.setenv("VIDIT_DEBUG", "1")
    with pytest.raises(UsageError, match=expected.replace("[", r"\[").replace("]", r"\]")):
        run(main, DemoBenchConfig, argv)
    monkeypatch.delenv("VIDIT_DEBUG")
    with pytest.raises(SystemExit) as e:
        run(main, DemoBenchConfig, argv)
    err = capsys.readouterr().err.strip()
    assert e.value.code == 2 and len(err.splitlines()) == 1 and expected in err and "Traceback" not in err
    assert not out.exists()
