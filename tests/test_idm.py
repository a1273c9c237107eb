"""The inverse-dynamics model: heads per action space, learning a synthetic task, train_idm on a real
Crafter dataset (tokenizer augmentation, held-out metrics, resume), shipped IDMs."""
import numpy as np
import pytest
import torch

from envs.collect import CollectConfig, collect
from idm.model import IDMConfig, InverseDynamics
from idm.train import TrainIDMConfig, train
from vidit.cli import UsageError

BOX = {"type": "box", "shape": [2], "low": [-1.0, -1.0], "high": [1.0, 1.0]}
TINY = dict(frame_size=16, channels=(8, 16), dim=32, n_layer=1, n_head=2, window=4)


def moving_square(actions: np.ndarray, size: int = 16) -> np.ndarray:
    """Frames of a 4x4 square that the actions move (dx, dy in {-1, 0, 1} * 2 px), wrapping around."""
    pos = np.array([6, 6])
    frames = []
    for a in [np.zeros(2)] + list(actions):
        pos = (pos + 2 * np.round(a).astype(int)) % (size - 4)
        f = np.zeros((size, size, 3), np.uint8)
        f[pos[1]:pos[1] + 4, pos[0]:pos[0] + 4] = 255
        frames.append(f)
    return np.stack(frames)


@pytest.mark.parametrize("space", [BOX, {"type": "discrete", "n": 9}])
def test_idm_learns_a_synthetic_task(space):
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    model = InverseDynamics(IDMConfig(space, **TINY))
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)

    def batch(n):
        ids = rng.integers(0, 9, (n, 3))
        moves = np.stack([ids % 3 - 1, ids // 3 - 1], -1).astype(np.float32)  # [n, 3, 2]
        frames = np.stack([moving_square(m) for m in moves])
        target = moves if space["type"] == "box" else ids[..., None].astype(np.float32)
        return torch.from_numpy(frames), torch.from_numpy(target)

    for _ in range(150):
        frames, target = batch(32)
        loss = model.loss(frames, target)
        opt.zero_grad()
        loss.backward()
        opt.step()
    frames, target = batch(64)
    pred, loglik = model.predict(frames.numpy())
    assert pred.shape == (64, 3, target.shape[-1]) and loglik.shape == (64, 3)
    if space["type"] == "box":
        assert np.mean((pred - target.numpy()) ** 2) < 0.1 * target.numpy().var()
    else:
        assert (pred == target.numpy()).mean() > 0.9


def test_label_reads_every_transition_of_a_long_video_window_by_window():
    torch.manual_seed(0)
    model = InverseDynamics(IDMConfig({"type": "discrete", "n": 9}, **TINY))  # window 4: 3 transitions
    video = np.random.default_rng(1).integers(0, 255, (9, 16, 16, 3), dtype=np.uint8)
    labels = model.label(video)
    assert labels.shape == (8, 1)
    window = {s: model.predict(video[None, s:s + 4])[0][0] for s in (0, 3, 5)}  # the last ends at the video's end
    assert np.array_equal(labels[:3], window[0]) and np.array_equal(labels[3:5], window[3][:2])
    assert np.array_equal(labels[5:], window[5])
    with pytest.raises(ValueError, match="no transition"):
        model.label(video[:1])


def test_multidiscrete_head_and_save_load(tmp_path):
    space = {"type": "multidiscrete", "nvec": [2] * 8 + [11, 11]}  # MineRL's flat action
    model = InverseDynamics(IDMConfig(space, **TINY))
    frames = np.random.default_rng(0).integers(0, 255, (2, 4, 16, 16, 3), dtype=np.uint8)
    actions, _ = model.predict(frames)
    assert actions.shape == (2, 3, 10) and actions[..., 8:].max() <= 10
    model.save_pretrained(tmp_path / "m")
    again = InverseDynamics.from_pretrained(tmp_path / "m", action_space=space)
    assert np.array_equal(again.predict(frames)[0], actions)
    with pytest.raises(ValueError, match="action space"):
        InverseDynamics.from_pretrained(tmp_path / "m", action_space={"type": "discrete", "n": 17})
    with pytest.raises(ValueError, match="expected"):
        model.predict(frames[:, :, :8])


@pytest.fixture(scope="module")
def crafter_data(tmp_path_factory):
    root = tmp_path_factory.mktemp("idm")
    collect(CollectConfig(env="crafter", policy="random", episodes=4, max_steps=10, out=root / "data", seed=3))
    from worldmodel.tokenizer import VQTokenizer
    VQTokenizer.from_preset("tiny").save_pretrained(root / "tok")
    return root


def idm_cfg(root, out, **kw):
    base = dict(data=(root / "data",), out=out, tokenizer=root / "tok", window=4, batch_size=8, max_steps=6,
                eval_every=3, holdout=0.25)
    return TrainIDMConfig(**{**base, **kw})


def test_train_idm_reports_real_and_reconstructed_metrics_and_resumes(crafter_data, tmp_path):
    whole = train(idm_cfg(crafter_data, tmp_path / "whole"))
    assert {"real_acc", "real_acc_changed", "recon_acc", "recon_acc_changed"} <= set(whole)
    for name in ("config.json", "model.safetensors", "metrics.json", "log.csv", "reconstructions.npz"):
        assert (tmp_path / "whole" / name).is_file(), name
    train(idm_cfg(crafter_data, tmp_path / "split", max_steps=3))  # "killed" after the step-3 checkpoint
    split = train(idm_cfg(crafter_data, tmp_path / "split"))
    a = InverseDynamics.from_pretrained(tmp_path / "whole").state_dict()
    b = InverseDynamics.from_pretrained(tmp_path / "split").state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a) and split["real_acc"] == whole["real_acc"]
    with pytest.raises(UsageError, match="another run"):
        train(idm_cfg(crafter_data, tmp_path / "split", lr=1e-2))


def test_train_idm_rejects_windows_longer_than_every_episode(crafter_data, tmp_path):
    with pytest.raises(UsageError, match="no episode has"):
        train(idm_cfg(crafter_data, tmp_path / "x", window=40))


@pytest.mark.parametrize("name,space", [("push-red", BOX | {"shape": [5], "low": [-1.0] * 5, "high": [1.0] * 5}),
                                        ("crafter", {"type": "discrete", "n": 17})])
def test_shipped_idms_load_by_name(name, space):
    model = InverseDynamics.from_pretrained(name, action_space=space)
    assert model.config.frame_size == 64 and model.config.window >= 8
