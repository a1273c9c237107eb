"""wm_eval (the paper's Table 1 on our domains), its metrics, and the Crafter walk policies it records."""
import json

import numpy as np
import pytest
import torch

import envs
from envs.experts import make_policy
from experiments.wm_eval import WMEvalConfig
from experiments.wm_eval import main as wm_eval
from vidit.cli import run
from worldmodel import metrics
from worldmodel.simulator import VideoSimulator


def test_psnr_ssim_frechet():
    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, (2, 32, 32, 3), dtype=np.uint8)
    noisy = np.clip(a + rng.normal(0, 20, a.shape), 0, 255).astype(np.uint8)
    assert metrics.ssim(a, a) == pytest.approx(1.0)
    assert metrics.ssim(a, noisy) < metrics.ssim(a, np.clip(a.astype(int) + 3, 0, 255).astype(np.uint8)) < 1
    assert metrics.psnr(a, noisy) < metrics.psnr(a, a)
    f = rng.normal(size=(200, 4))
    assert metrics.frechet_distance(f, f) == pytest.approx(0, abs=1e-6)
    assert metrics.frechet_distance(f, f + 1) == pytest.approx(4, rel=0.05)  # squared mean shift of 1 per dim


def test_linear_probe_separates_classes():
    rng = np.random.default_rng(0)
    y = np.repeat([0, 1, 2], 30)
    x = rng.normal(size=(90, 8)) + 3 * np.eye(8)[y]
    probe = metrics.LinearProbe().fit(x[::2], y[::2])
    assert np.mean(probe.predict(x[1::2]) == y[1::2]) > 0.95


def test_features_pool_hidden_states_of_later_frames(crafter_models):
    sim = VideoSimulator.from_pretrained(crafter_models[0])
    clips = np.random.default_rng(0).integers(0, 256, (2, 4, 64, 64, 3), dtype=np.uint8)
    feats = sim.features(clips, first_frame=2)
    assert feats.shape == (2, sim.decoder.config.dim)
    changed = clips.copy()
    changed[:, 3] = 255 - changed[:, 3]
    assert (sim.tokenizer.encode(changed) != sim.tokenizer.encode(clips)).any()  # else no change reaches the decoder
    assert not np.allclose(sim.features(changed, first_frame=2), feats)
    with pytest.raises(ValueError, match="first_frame"):
        sim.features(clips, first_frame=4)


def test_walk_policy_moves_the_player():
    env = envs.make("crafter")
    env.reset(seed=3)
    start = env.unwrapped.player.pos.copy()
    policy = make_policy("walk_left", env, seed=0)
    for _ in range(6):
        env.step(policy.act(None))
    assert env.unwrapped.player.pos[0] < start[0]
    env.close()


class _LPIPS(torch.nn.Module):
    """A stand-in perceptual net (random conv features) with LPIPS's calling convention."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 3)

    def forward(self, x, y):
        return (self.conv(x) - self.conv(y)).pow(2).mean(dim=(1, 2, 3))


class _I3D(torch.nn.Module):
    """A stand-in video net with StyleGAN-V's i3d_torchscript calling convention."""

    def forward(self, x, rescale: bool = False, resize: bool = True, return_features: bool = True):
        return x.mean(dim=(3, 4)).flatten(1)


def test_wm_eval_quick_writes_table_resumes_and_refuses(tmp_path, crafter_models, push_red_models, capsys):
    torch.jit.script(_LPIPS()).save(str(tmp_path / "lpips.pt"))
    torch.jit.script(_I3D()).save(str(tmp_path / "i3d.pt"))
    out = tmp_path / "out"
    argv = ["--quick", "--out", str(out), "--crafter-model", str(crafter_models[0]),
            "--push-red-model", str(push_red_models[0]), "--threads", "1"]
    rows = wm_eval(WMEvalConfig(quick=True, out=out, crafter_model=str(crafter_models[0]),
                                push_red_model=str(push_red_models[0]), threads=1,
                                lpips=tmp_path / "lpips.pt", i3d=tmp_path / "i3d.pt"))
    assert (out / "wm_eval.md").is_file() and (out / "wm_eval.png").stat().st_size > 0
    table = json.loads((out / "wm_eval.json").read_text())
    settings = {(r["domain"], r["setting"]) for r in table["rows"]}
    assert ("push_red", "contrastive") in settings and ("crafter", "in-class 2x4") in settings
    gen_rows = [r for r in rows if r["setting"] != "real"]
    assert all(0 <= r["p_acc"] <= 1 and r["psnr"] > 0 and "lpips" in r and "fvd" in r for r in gen_rows)

    # a rerun (here of one domain) reuses the generated frames and the recorded episodes
    stamps = {p: p.stat().st_mtime_ns for p in (out / "generated").glob("*.npy")}
    wm_eval(WMEvalConfig(quick=True, out=out, crafter_model=str(crafter_models[0]), domains=("crafter",), threads=1,
                         push_red_model=str(push_red_models[0]), lpips=tmp_path / "lpips.pt", i3d=tmp_path / "i3d.pt"))
    assert stamps and all(p.stat().st_mtime_ns == t for p, t in stamps.items())

    # another configuration on the same --out is refused in one line, nothing written
    with pytest.raises(SystemExit) as e:
        run(wm_eval, WMEvalConfig, argv + ["--seed", "1"])
    assert e.value.code == 2 and "other settings (" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        run(wm_eval, WMEvalConfig, ["--quick", "--out", str(tmp_path / "x"), "--i3d", str(tmp_path / "nope.pt")])
    assert e.value.code == 2 and "nope.pt: no such file" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()
