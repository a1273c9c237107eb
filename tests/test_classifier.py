"""The success classifier and ``train_classifier`` on a real Crafter dataset (labels from info["success"])."""
import numpy as np
import pytest
import torch

from envs.collect import CollectConfig, collect
from vidit.cli import UsageError
from worldmodel.classifier import SuccessClassifier
from worldmodel.train_classifier import TrainClassifierConfig, load_labelled, train


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("clf")
    collect(CollectConfig(env="crafter", task="chop_wood", policy="expert", episodes=4, max_steps=10,
                          out=root / "expert", seed=11))
    collect(CollectConfig(env="crafter", task="chop_wood", policy="random", episodes=2, max_steps=2,
                          out=root / "random", seed=11))
    from worldmodel.tokenizer import VQTokenizer
    VQTokenizer.from_preset("tiny").save_pretrained(root / "tok")
    return root


def cfg(root, out, **kw):
    return TrainClassifierConfig(**{**dict(data=(root / "expert",), out=out, tokenizer=root / "tok", batch_size=16,
                                           max_steps=6, eval_every=3, holdout=0.25), **kw})


def test_train_classifier_reports_real_and_recon_accuracy_and_resumes(data, tmp_path):
    whole = train(cfg(data, tmp_path / "whole"))
    assert {"real_acc", "real_acc_success", "real_acc_failure", "recon_acc"} <= set(whole)
    train(cfg(data, tmp_path / "split", max_steps=3))
    train(cfg(data, tmp_path / "split"))
    a = SuccessClassifier.from_pretrained(tmp_path / "whole").state_dict()
    b = SuccessClassifier.from_pretrained(tmp_path / "split").state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    model = SuccessClassifier.from_pretrained(tmp_path / "whole")
    assert model.logits(np.zeros((2, 3, 64, 64, 3), np.uint8)).shape == (2, 3)
    with pytest.raises(ValueError, match="expected"):
        model.logits(np.zeros((2, 32, 32, 3), np.uint8))


def test_lookahead_labels_a_frame_with_success_k_steps_later(data, tmp_path):
    now, ahead = (load_labelled((data / "expert",), lookahead=k)[1][""] for k in (0, 2))
    assert any(n.any() for n in now)
    for n, a in zip(now, ahead):  # success is latched: it comes 2 frames sooner, or at the first frame
        first = int(n.argmax()) if n.any() else len(n)
        assert a.sum() == (n.sum() + min(2, first) if n.any() else 0) and a[-1] == n[-1]
    train(cfg(data, tmp_path / "k2", lookahead=2, max_steps=1, tokenizer=None))
    assert SuccessClassifier.from_pretrained(tmp_path / "k2").config.lookahead == 2


def test_train_classifier_needs_both_labels(data, tmp_path):
    with pytest.raises(UsageError, match="all successes or all failures"):
        train(cfg(data, tmp_path / "x", data=(data / "random",), tokenizer=None))


def test_shipped_push_red_classifier_tells_goals_from_starts():
    from envs.robodesk import load_instances
    from worldmodel.simulator import resolve_model
    model = SuccessClassifier.from_pretrained("push-red")
    assert (model.logits(load_instances()["goals"]) > 0).mean() > 0.9
    assert (model.logits(np.load(resolve_model("robodesk-push-red") / "start_frames.npy")) < 0).mean() > 0.9
    with pytest.raises(FileNotFoundError, match="push-red"):
        SuccessClassifier.from_pretrained("no-such-classifier")


def test_shipped_lookahead_classifier_is_graded_between_starts_and_goals():
    from envs.robodesk import load_instances
    from worldmodel.simulator import resolve_model
    model = SuccessClassifier.from_pretrained("push-red-k8")
    start_frames = np.load(resolve_model("robodesk-push-red") / "start_frames.npy")
    goals, starts = model.logits(load_instances()["goals"]), model.logits(start_frames)
    exact = SuccessClassifier.from_pretrained("push-red").logits(start_frames)
    assert model.config.lookahead == 8 and (goals > 0).mean() > 0.9
    assert goals.mean() - starts.mean() > 5 and starts.mean() > exact.mean() + 5  # starts: nearer "soon" than "now"


@pytest.fixture(scope="module")
def tasks_data(tmp_path_factory):
    root = tmp_path_factory.mktemp("clf_tasks")
    for i, task in enumerate(("chop_wood", "drink_water")):
        collect(CollectConfig(env="crafter", task=task, policy="expert", episodes=4, max_steps=25,
                              out=root / task, seed=20 + i))
    return root


def test_demo_conditioned_classifier_pairs_frames_with_goal_frames_of_each_task(tasks_data, tmp_path):
    data = (tasks_data / "chop_wood", tasks_data / "drink_water")
    frames, labels, goals, _ = load_labelled(data)
    assert {"", "chop_wood", "drink_water", "eat_cow"} <= set(labels)
    for e in range(len(frames)):  # goal frames: frames showing the episode's own task done, and only those
        own = "chop_wood" if e < 4 else "drink_water"
        assert len(goals[own][e]) == 1 and np.array_equal(goals[own][e][0], frames[e][labels[own][e].argmax()])
        assert len(goals["drink_water" if own == "chop_wood" else "chop_wood"][e]) == 0
    m = train(cfg(tasks_data, tmp_path / "c", data=data, tokenizer=None, conditioned=True, holdout=0.5))
    assert {"real_acc", "real_acc_success", "real_acc_failure"} <= set(m)
    model = SuccessClassifier.from_pretrained(tmp_path / "c")
    assert model.config.conditioned
    x = frames[0][:4]
    a, b = model.logits(x, goals["chop_wood"][0][-1]), model.logits(x, goals["drink_water"][4][-1])
    assert a.shape == (4,) and not np.allclose(a, b), "the goal frame is an input"
    with pytest.raises(ValueError, match="needs the demo's goal frame"):
        model.logits(x)
    with pytest.raises(UsageError, match="two or more tasks"):
        train(cfg(tasks_data, tmp_path / "d", data=data[:1], tokenizer=None, conditioned=True))


def test_shipped_demo_conditioned_classifier_reads_the_demo():
    """Each benchmark goal image scores positive against the demo of its own task and no other."""
    from envs.demos import load_demo
    from envs.robodesk import DESK_INSTANCES_FILE, TASKS, load_instances
    goals = load_instances(DESK_INSTANCES_FILE)["goals"][:30]
    model = SuccessClassifier.from_pretrained("desk-demo-k8")
    hits = np.array([[(model.logits(goals[:, k], load_demo(f"{demo}.mp4", 64, None, 1)[-1]) > 0).mean()
                      for k in range(len(TASKS))] for demo in TASKS])
    assert (np.diag(hits) >= 0.9).all() and (hits[~np.eye(len(TASKS), dtype=bool)] <= 0.1).all(), hits
