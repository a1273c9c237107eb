"""``rl_imagination --quick`` end to end on a tiny untrained world model and classifier: the table and plot,
a rerun that trains and evaluates nothing again, and bad input as one line."""
import shutil

import numpy as np
import pytest
import torch

from experiments import rl_imagination as rl
from vidit.cli import run
from worldmodel.classifier import ClassifierConfig, SuccessClassifier
from worldmodel.imagination import START_FRAMES, classifier_reward
from worldmodel.simulator import resolve_model


@pytest.fixture
def models(push_red_models, tmp_path):
    """(world model with start frames, success classifier) folders, both tiny and untrained."""
    wm = shutil.copytree(push_red_models[0], tmp_path / "wm")
    np.save(wm / START_FRAMES, np.load(resolve_model("robodesk-push-red") / START_FRAMES)[:4])
    torch.manual_seed(0)
    SuccessClassifier(ClassifierConfig(channels=(8, 16))).save_pretrained(tmp_path / "clf")
    return wm, tmp_path / "clf"


def test_classifier_reward_is_a_probability_per_frame(models):
    clf = SuccessClassifier.from_pretrained(models[1])
    frames = torch.randint(0, 256, (3, 64, 64, 3), dtype=torch.uint8)
    reward = classifier_reward(clf)(frames, None)
    assert reward.shape == (3,) and torch.allclose(reward, torch.sigmoid(clf(frames)).detach())


def test_quick_runs_resumes_and_refuses_other_settings(models, tmp_path, capsys):
    out = tmp_path / "out"
    args = ["--quick", "--out", str(out), "--model", str(models[0]), "--classifier", str(models[1])]
    rows = run(rl.main, rl.RLImaginationConfig, args)
    imagined, real, random = rows
    assert [r["arm"] for r in rows] == list(rl.POLICIES.values()) and all(r["episodes"] == 2 for r in rows)
    assert imagined["real_steps"] == 0 and imagined["imagined_steps"] == 8 and imagined["steps_saved"] == 8
    assert real["real_steps"] == 8 and real["imagined_steps"] == 0 and random["train_min"] == 0
    for name in ("rl_imagination.md", "rl_imagination.csv", "rl_imagination.json", "rl_imagination.png",
                 "eval/random/instance_00.mp4"):
        assert (out / name).is_file()
    outputs = [*out.glob("train/*/*"), *out.glob("eval/*.json")]
    assert len(outputs) == 7  # 2 x (policy.zip, train.json), 3 eval json
    stamp = {p: p.stat().st_mtime_ns for p in outputs}
    capsys.readouterr()
    assert run(rl.main, rl.RLImaginationConfig, args + ["--threads", "2"]) == rows  # a speed flag may change
    printed = capsys.readouterr().out
    assert printed.count("rl_imagination: skip") == 5 and "skip training imagination" in printed
    assert all(p.stat().st_mtime_ns == stamp[p] for p in outputs)
    with pytest.raises(SystemExit) as e:
        run(rl.main, rl.RLImaginationConfig, args + ["--seed", "1"])
    err = capsys.readouterr().err.strip()
    assert e.value.code == 2 and len(err.splitlines()) == 1 and "other settings (seed: 0 -> 1)" in err


@pytest.mark.parametrize("case", ["classifier", "start_frames", "budget", "not_empty"])
def test_bad_input_is_one_line(case, models, push_red_models, tmp_path, capsys):
    out = tmp_path / "out"
    if case == "not_empty":
        out.mkdir()
        (out / "mine.txt").write_text("keep me")
    model = push_red_models[0] if case == "start_frames" else models[0]  # the fixture's folder has no start frames
    classifier = tmp_path / "no-classifier" if case == "classifier" else models[1]
    size = ["--minutes", "none"] if case == "budget" else ["--quick"]
    with pytest.raises(SystemExit) as e:
        run(rl.main, rl.RLImaginationConfig, [*size, "--out", str(out), "--model", str(model),
                                              "--classifier", str(classifier)])
    err = capsys.readouterr().err.strip()
    assert e.value.code == 2 and len(err.splitlines()) == 1 and "Traceback" not in err
    assert {"classifier": "no success classifier", "start_frames": START_FRAMES, "budget": "training budget",
            "not_empty": "not empty"}[case] in err
    left = sorted(p.name for p in out.iterdir()) if out.exists() else []
    assert left == (["mine.txt"] if case == "not_empty" else [])  # bad input writes nothing
