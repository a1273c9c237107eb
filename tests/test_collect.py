"""Episode datasets and the ``collect`` CLI, on the real Crafter env (fast) and push_red (one episode)."""
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pyarrow.parquet as pq
import pytest

import envs
from envs.collect import CollectConfig, collect, run_episode
from envs.dataset import Clips, EpisodeDataset, Windows, episode_paths
from envs.experts import make_policy

CLI = [sys.executable, "-m", "envs.collect"]


def crafter_cfg(out, **kw):
    base = dict(env="crafter", policy="random", episodes=3, out=out, max_steps=12, seed=5)
    return CollectConfig(**{**base, **kw})


def read_tables(root):
    return pq.read_table(root / "data").sort_by([("episode_index", "ascending"), ("frame_index", "ascending")])


def test_collect_writes_lerobot_layout_and_reads_back(tmp_path):
    out = tmp_path / "ds"
    summary = collect(crafter_cfg(out))
    assert summary["new_episodes"] == 3 and summary["total_episodes"] == 3
    data = EpisodeDataset(out)
    assert data.info["env_id"] == "vidit/Crafter-v0" and data.info["action_space"] == {"type": "discrete", "n": 17}
    assert data.episodes == [0, 1, 2] and all(data.length(e) == 12 for e in data.episodes)
    for e in data.episodes:
        parquet, mp4 = episode_paths(out, e)
        assert parquet.is_file() and mp4.is_file()
        assert data.frames(e).shape == (13, 64, 64, 3)
    table = read_tables(out)
    assert set(table.column_names) >= {"episode_index", "frame_index", "timestamp", "action", "reward", "success",
                                       "terminated", "truncated", "seed", "instance"}
    assert table.column("seed").to_pylist()[:12] == [5] * 12
    clips = Clips(data, length=4, stride=2, step=3)
    assert len(clips) == 3 * 3 and clips[0].shape == (4, 64, 64, 3)
    assert np.array_equal(clips[1], data.frames(0)[3:10:2])
    windows = Windows(data, size=3)
    assert len(windows) == 3 * 11
    w = windows[12]
    assert w["frames"].shape == (3, 64, 64, 3) and w["actions"].shape == (2, 1)
    assert np.array_equal(w["actions"], data.actions(1)[1:3])


def psnr(a, b):
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return 10 * np.log10(255.0 ** 2 / mse) if mse > 0 else np.inf


def test_round_trip_frames_within_psnr_and_actions_exact(tmp_path):
    out = tmp_path / "ds"
    collect(crafter_cfg(out, episodes=1, policy="expert", task="chop_wood", noise=0.3, max_steps=20))
    env = envs.make("crafter", task="chop_wood", max_episode_steps=20)
    frames, steps = run_episode(env, make_policy("expert", env, noise=0.3), seed=5, instance=None)
    data = EpisodeDataset(out)
    assert np.array_equal(data.actions(0)[:, 0], steps["action"][:, 0])  # actions exact
    assert psnr(data.frames(0), frames) > 35  # frames within the codec's stated fidelity
    assert read_tables(out).column("success").to_pylist() == steps["success"].tolist()


def test_parallel_workers_give_the_same_dataset(tmp_path):
    collect(crafter_cfg(tmp_path / "one", episodes=2))
    collect(crafter_cfg(tmp_path / "two", episodes=2, workers=2))
    assert read_tables(tmp_path / "one").equals(read_tables(tmp_path / "two"))


def test_collect_resumes_after_kill(tmp_path):
    out = tmp_path / "ds"
    args = CLI + ["--env", "crafter", "--policy", "random", "--episodes", "6", "--max-steps", "12",
                  "--seed", "5", "--out", str(out)]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline and not list((out / "data").glob("chunk-*/episode_000001.parquet")):
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    partial = len(list((out / "data").glob("chunk-*/*.parquet")))
    assert 2 <= partial < 6, "the kill should land mid-run"
    stale = out / "videos" / "chunk-000" / "observation.image" / ".episode_000005.x1y2.mp4"
    stale.write_bytes(b"half an mp4")  # what a kill during a write leaves
    done = subprocess.run(args, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert f"6 episodes ({6 - partial} new" in done.stdout
    assert not [p for p in out.rglob(".*") if p.is_file()], "temp files left behind"
    collect(crafter_cfg(tmp_path / "fresh", episodes=6))
    assert read_tables(out).equals(read_tables(tmp_path / "fresh"))


def test_refuses_to_mix_configurations(tmp_path):
    out = tmp_path / "ds"
    collect(crafter_cfg(out, episodes=1))
    r = subprocess.run(CLI + ["--env", "crafter", "--policy", "expert", "--episodes", "2", "--max-steps", "12",
                              "--seed", "5", "--out", str(out)], capture_output=True, text=True)
    assert r.returncode == 2 and "collected differently" in r.stderr and "policy" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("args,match", [
    (["--episodes", "0"], "--episodes must be >= 1"),
    (["--env", "atari"], "unknown env 'atari'; known: vidit/PushRed-v0"),
    (["--noise", "-1"], "--noise must be >= 0"),
    (["--env", "crafter", "--instances", "benchmark"], "applies to RoboDesk envs only"),
])
def test_bad_options_exit_2_in_one_line(tmp_path, args, match):
    r = subprocess.run(CLI + args + ["--out", str(tmp_path / "x")], capture_output=True, text=True)
    assert r.returncode == 2
    assert match in r.stderr and len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr
    assert not (tmp_path / "x").exists()


def test_bad_dataset_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="not an episode dataset"):
        EpisodeDataset(tmp_path)


def test_push_red_expert_episode_from_instances(tmp_path):
    pytest.importorskip("robodesk")
    out = tmp_path / "pr"
    s = collect(CollectConfig(env="push_red", policy="expert", noise=0.1, episodes=1, out=out, instances="heldout"))
    assert s["success_rate_new"] == 1.0
    data = EpisodeDataset(out)
    assert data.frames(0).shape == (16, 64, 64, 3) and data.actions(0).shape == (15, 5)
    assert read_tables(out).column("instance").to_pylist() == [30] * 15
