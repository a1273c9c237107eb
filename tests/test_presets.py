"""Agent recipes are presets stored with their world model: the default reproduces a result without recipe flags."""
import json

import pytest

from agents.run_agent import RunAgentConfig, main
from experiments.demo_bench import DemoBenchConfig
from experiments.mpc_bench import MPCBenchConfig
from vidit.cli import flatten, parse, run

RECIPE = dict(samples=32, horizon=4, futures=2, context_frames=0, std=(1.5, 1.5, 1.5, 0.3, 0.3),
              classifier="push-red-k8+0.25*push-red")  # the 0.825 row of robodesk-push-red's card
VP2 = dict(samples=200, horizon=10, futures=1, context_frames=2, std=(0.5, 0.5, 0.5, 0.1, 0.1), classifier=None)
IMITATION = ("n_candidates", "pick", "replan_every")


def settings(cfg) -> dict:
    return {k: flatten(cfg)[k] for k in RECIPE}


def test_the_models_recipe_is_the_default_and_vp2_is_vp2s():
    assert settings(parse(RunAgentConfig, ["--env", "push_red", "--agent", "mpc"])) == RECIPE
    assert settings(parse(MPCBenchConfig, [])) == RECIPE  # mpc_bench reproduces the headline with no recipe flag
    assert settings(parse(RunAgentConfig, ["--env", "push_red", "--agent", "mpc", "--preset", "vp2"])) == VP2
    assert settings(parse(MPCBenchConfig, ["--preset", "vp2"])) == VP2
    given = parse(RunAgentConfig, ["--env", "push_red", "--agent", "mpc", "--samples", "200", "--horizon", "4"])
    assert settings(given) == {**RECIPE, "samples": 200}  # a flag given beats the preset, even at VP²'s value
    desk = parse(DemoBenchConfig, ["--settings", "mpc-demo"])  # the robodesk model's own recipe
    assert (desk.samples, desk.horizon, desk.futures, desk.context_frames) == (32, 4, 1, 0)
    assert settings(parse(RunAgentConfig, ["--env", "crafter"])) == VP2  # the crafter model ships no preset


def test_the_imitation_agents_recipe_comes_with_the_desk_model():
    def recipe(cfg):
        return tuple(flatten(cfg)[k] for k in IMITATION)
    assert recipe(parse(RunAgentConfig, ["--env", "push_green", "--demo", "push_green.mp4"])) == (8, "cost", 2)
    assert recipe(parse(DemoBenchConfig, ["--settings", "imitate"])) == (8, "cost", 2)  # the 0.84 row, no flags
    assert recipe(parse(RunAgentConfig, ["--env", "robodesk", "--preset", "vp2"])) == (1, "idm", 4)  # VidIT's
    assert recipe(parse(RunAgentConfig, ["--env", "robodesk", "--replan-every", "1"])) == (8, "cost", 1)
    assert recipe(parse(RunAgentConfig, ["--env", "push_red"])) == (1, "idm", 4)  # its model has no imitation recipe


def test_a_model_without_presets_plans_with_vp2s_and_bad_presets_are_one_line(push_red_models, tmp_path, capsys):
    args = ["--env", "push_red", "--agent", "mpc", "--model", str(push_red_models[0])]
    assert settings(parse(RunAgentConfig, args)) == VP2
    with pytest.raises(SystemExit) as e:
        run(main, RunAgentConfig, args + ["--preset", "fast", "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err.strip()
    assert e.value.code == 2 and len(err.splitlines()) == 1 and "known: model, vp2" in err
    bad = tmp_path / "model"
    bad.mkdir()
    (bad / "config.json").write_text((push_red_models[0] / "config.json").read_text())
    (bad / "presets.json").write_text(json.dumps({"recommended": {"samples": 8, "n_candidates": 4}}))
    assert parse(MPCBenchConfig, ["--model", str(bad)]).samples == 8  # a benchmark without the imitation agent
    (bad / "presets.json").write_text(json.dumps({"recommended": {"samples": 8, "sampels": 9}}))
    with pytest.raises(ValueError, match="unknown settings sampels"):
        parse(RunAgentConfig, ["--env", "push_red", "--agent", "mpc", "--model", str(bad)])
