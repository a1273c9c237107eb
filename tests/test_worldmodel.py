"""The world-model pipeline end to end at tiny sizes, on a real Crafter dataset:
collect -> train_tokenizer -> tokenize_data -> train_worldmodel (resume, DDP) -> VideoSimulator -> imagination env."""
import copy
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from envs.collect import CollectConfig, collect
from envs.dataset import EpisodeDataset
from worldmodel.decoder import Decoder
from worldmodel.imagination import ImaginationEnv, ImaginationGymEnv
from worldmodel.metrics import psnr
from worldmodel.sampling import SamplingConfig
from worldmodel.simulator import VideoSimulator, resolve_model
from worldmodel.tokenize_data import tokenize_dataset
from worldmodel.train_tokenizer import TrainTokenizerConfig
from worldmodel.train_tokenizer import train as train_tokenizer
from worldmodel.train_worldmodel import TrainConfig, train


@pytest.fixture(scope="module")
def shard(tmp_path_factory):
    root = tmp_path_factory.mktemp("wm")
    collect(CollectConfig(env="crafter", policy="random", episodes=4, max_steps=12, out=root / "data", seed=1))
    train_tokenizer(TrainTokenizerConfig(data=(root / "data",), out=root / "tok", preset="tiny", max_steps=3,
                                         batch_size=8, eval_frames=8, heldout=0.25))
    from worldmodel.tokenizer import VQTokenizer
    tok = VQTokenizer.from_pretrained(root / "tok")
    tokenize_dataset(tok, root / "data", root / "shard.npz")
    return root


def wm_cfg(root, out, **kw):
    base = dict(data=(root / "shard.npz",), tokenizer=root / "tok", out=out, preset="tiny", clip_frames=4,
                batch_size=4, max_steps=6, warmup=2, eval_every=3, eval_clips=4, holdout=0.25, lr=3e-3)
    return TrainConfig(**{**base, **kw})


def test_training_lowers_loss_and_writes_a_world_model(shard, tmp_path):
    first = train(wm_cfg(shard, tmp_path / "a", max_steps=3))
    last = train(wm_cfg(shard, tmp_path / "a", max_steps=30, eval_every=30))
    assert last["step"] == 30 and last["heldout_loss"] < first["heldout_loss"]
    for name in ("config.json", "decoder/config.json", "decoder/model.safetensors", "tokenizer/config.json",
                 "checkpoint.pt", "log.csv"):
        assert (tmp_path / "a" / name).exists(), name
    assert {"heldout_loss", "token_acc", "next_frame_psnr", "heldout_loss_actions"} <= set(last)


def test_resume_reaches_the_same_weights(shard, tmp_path):
    train(wm_cfg(shard, tmp_path / "whole"))
    train(wm_cfg(shard, tmp_path / "split", max_steps=3))  # "killed" after the step-3 checkpoint
    train(wm_cfg(shard, tmp_path / "split"))
    a = Decoder.from_pretrained(tmp_path / "whole" / "decoder").state_dict()
    b = Decoder.from_pretrained(tmp_path / "split" / "decoder").state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_select_best_keeps_the_lowest_heldout_weights_across_a_resume(shard, tmp_path):
    kw = dict(select="best", lr=3.0, warmup=1, token_noise=0.2, action_span="frame", eval_every=2, max_steps=12)
    train(wm_cfg(shard, tmp_path / "b", max_minutes=1e-6, **kw))  # time is up at the first evaluation
    rows = (tmp_path / "b" / "log.csv").read_text().splitlines()
    assert len(rows) == 2 and rows[1].startswith("2,")
    train(wm_cfg(shard, tmp_path / "b", **kw))  # resumes to step 12; lr 3 makes some later evaluations worse
    header, *rows = [r.split(",") for r in (tmp_path / "b" / "log.csv").read_text().splitlines()]
    loss, saved = [[float(r[header.index(k)]) for r in rows] for k in ("heldout_loss_actions", "saved")]
    best = [min(loss[:i + 1]) for i in range(len(loss))]
    assert saved == [float(i == 0 or loss[i] < best[i - 1]) for i in range(len(loss))] and 0 in saved
    sim = VideoSimulator.from_pretrained(tmp_path / "b")
    assert sim.layout.action_span == "frame"
    frames = EpisodeDataset(shard / "data").frames(0)[:2]
    assert sim.rollout(frames, np.array([[[1], [2]], [[5], [5]]]), seed=0).shape == (2, 2, 64, 64, 3)


def test_resume_refuses_another_run(shard, tmp_path):
    from vidit.cli import UsageError
    train(wm_cfg(shard, tmp_path / "x", max_steps=3))
    with pytest.raises(UsageError, match="checkpoint of another run"):
        train(wm_cfg(shard, tmp_path / "x", lr=1e-2))


def test_ddp_two_processes_on_gloo(shard, tmp_path):
    out = tmp_path / "ddp"
    args = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
            "-m", "worldmodel.train_worldmodel", "--data", str(shard / "shard.npz"), "--tokenizer", str(shard / "tok"),
            "--out", str(out), "--preset", "tiny", "--clip-frames", "4", "--batch-size", "2", "--max-steps", "4",
            "--warmup", "2", "--eval-every", "2", "--eval-clips", "4", "--holdout", "0.25"]
    r = subprocess.run(args, capture_output=True, text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert r.returncode == 0, r.stderr[-2000:]
    assert (out / "decoder" / "model.safetensors").exists()
    rows = (out / "log.csv").read_text().splitlines()
    assert len(rows) == 3  # header + steps 2 and 4, logged by rank 0 only


@pytest.fixture(scope="module")
def sim(shard, tmp_path_factory):
    out = tmp_path_factory.mktemp("sim") / "wm"
    train(wm_cfg(shard, out, max_steps=20, eval_every=20, max_seq_len=160))
    return VideoSimulator.from_pretrained(out)


def test_imagine_and_rollout_shapes_and_seeds(sim, shard):
    frames = EpisodeDataset(shard / "data").frames(0)
    demo, query = frames[:3], frames[3:5]
    a = sim.imagine([demo], query, n_frames=2, n_samples=3, seed=0)
    assert a.shape == (3, 2, 64, 64, 3) and a.dtype == np.uint8
    assert np.array_equal(a, sim.imagine([demo], query, n_frames=2, n_samples=3, seed=0))
    actions = np.array([[[1], [2]], [[5], [5]], [[1], [2]]])
    r = sim.rollout(frames[:2], actions, seed=4)
    assert r.shape == (3, 2, 64, 64, 3)
    # parallel episodes: one batched call over several queries; one query alone is imagine()
    b = sim.imagine_batch([demo], np.stack([query, frames[5:7]]), n_frames=2, n_samples=2, seed=1)
    assert b.shape == (2, 2, 2, 64, 64, 3)
    assert np.array_equal(sim.imagine_batch([demo], query[None], n_frames=2, seed=1)[0],
                          sim.imagine([demo], query, n_frames=2, seed=1))


def test_action_conditioning_changes_rollouts(sim, shard):
    frames = EpisodeDataset(shard / "data").frames(1)
    prefix = sim.layout.sequence(sim.tokenizer.encode(frames[None, :2]))
    n = sim.layout.tokens_per_frame
    total = prefix.shape[1] + n
    feats = [sim.layout.action_features(sim.actions.encode(np.array([[[a]]])), total, first_frame=1)
             for a in (1, 5)]
    with torch.no_grad():
        sim.decoder.setup_caches(1, total)
        la = sim.decoder(prefix, input_pos=torch.arange(prefix.shape[1]), actions=feats[0][:, :-n])
        lb = sim.decoder(prefix, input_pos=torch.arange(prefix.shape[1]), actions=feats[1][:, :-n])
    assert torch.equal(la[:, :-1], lb[:, :-1])  # before the action position nothing changes
    assert not torch.allclose(la[:, -1], lb[:, -1])  # the next frame's first token depends on the action


def test_guided_rollouts_interpolate_between_unconditioned_and_conditioned(sim, shard):
    frames = EpisodeDataset(shard / "data").frames(2)[:2]
    actions = np.array([[[1], [2]], [[5], [5]], [[3], [0]]])
    guided = sim.rollout(frames, actions, SamplingConfig(guidance=2.5), seed=3)
    assert guided.shape == (3, 2, 64, 64, 3) and not np.array_equal(guided, sim.rollout(frames, actions, seed=3))
    # w = 0 keeps only the action-free branch: the same samples as imagining without actions
    assert np.array_equal(sim.rollout(frames, actions, SamplingConfig(guidance=0.0), seed=3),
                          sim.imagine([], frames, n_frames=2, n_samples=3, seed=3))


def test_bfloat16_simulator_stays_within_tolerance_of_float32(sim, shard):
    """The approximate fast path: bfloat16 layers and pixel decoder, float32 attention and encoding."""
    half = VideoSimulator(copy.deepcopy(sim.tokenizer), copy.deepcopy(sim.decoder), sim.config, dtype=torch.bfloat16)
    frames = EpisodeDataset(shard / "data").frames(1)
    ids = sim.tokenizer.encode(frames[None, :4])
    assert torch.equal(half.tokenizer.encode(frames[None, :4]), ids)  # encoding stays float32
    exact, approx = sim.tokenizer.decode(ids).numpy(), half.tokenizer.decode(ids).numpy()
    assert np.abs(approx.astype(int) - exact).mean() < 2 and psnr(approx, exact) > 35  # levels of 255, dB
    seq = sim.layout.sequence(ids)
    with torch.no_grad():
        want = torch.log_softmax(sim.decoder(seq), -1)
        got = torch.log_softmax(half.decoder(seq).float(), -1)
    assert (got - want).abs().max() < 0.1
    r = half.rollout(frames[:2], np.array([[[1], [2]], [[5], [5]]]), seed=3)
    assert r.shape == (2, 2, 64, 64, 3) and r.dtype == np.uint8


def test_bad_inputs(sim, shard):
    frames = EpisodeDataset(shard / "data").frames(0)
    with pytest.raises(ValueError, match="one int action in \\[0, 17\\)"):
        sim.rollout(frames[:2], np.zeros((2, 3, 5)))
    with pytest.raises(ValueError, match="context window"):
        sim.imagine([frames], frames, n_frames=8)
    with pytest.warns(UserWarning, match="48x48.*resizing"):
        sim.imagine([frames[:2, :48, :48]], frames[:1, :48, :48], n_frames=1)


def test_imagination_env_checks_and_trains_ppo(sim, shard):
    from gymnasium.utils.env_checker import check_env
    from stable_baselines3 import PPO
    from stable_baselines3.common.env_checker import check_env as sb3_check

    starts = EpisodeDataset(shard / "data").frames(0)[:4]
    env = ImaginationGymEnv(sim, starts, max_steps=5, context_frames=2, goal=starts[0])
    check_env(env, skip_render_check=True)
    sb3_check(env)
    obs0, _ = env.reset(seed=3)
    trace = [env.step(1)[0] for _ in range(3)]
    obs1, _ = env.reset(seed=3)
    assert np.array_equal(obs0, obs1) and all(np.array_equal(a, env.step(1)[0]) for a in trace)
    model = PPO("CnnPolicy", env, n_steps=64, batch_size=32, n_epochs=1, seed=0, device="cpu",
                policy_kwargs={"normalize_images": True}, verbose=0)
    model.learn(total_timesteps=128)
    assert model.num_timesteps >= 128


def test_batched_env_resets_only_dead_rows(sim, shard):
    starts = EpisodeDataset(shard / "data").frames(2)[:3]
    env = ImaginationEnv(sim, starts, n_envs=3, max_steps=2, context_frames=2, seed=0)
    env.reset()
    env.step(np.array([1, 2, 3]))
    before = env.context.clone()
    env.reset_dead(torch.tensor([False, True, False]))
    assert torch.equal(env.context[0], before[0]) and torch.equal(env.context[2], before[2])
    assert env.steps.tolist() == [1, 0, 1]


@pytest.mark.parametrize("name,env_id,action_dim,action", [
    ("robodesk-push-red", "vidit/PushRed-v0", 5, np.zeros((2, 1, 5), np.float32)),
    ("robodesk", "vidit/RoboDesk-v0", 5, np.zeros((2, 1, 5), np.float32)),
    ("crafter", "vidit/Crafter-v0", 17, np.zeros((2, 1, 1), np.int64))])
def test_shipped_models_load_by_name_and_step_as_envs(name, env_id, action_dim, action):
    import gymnasium as gym
    sim = VideoSimulator.from_pretrained(name)
    assert sim.tokenizer.grid == (8, 8) and sim.actions.dim == action_dim and sim.config["env_id"] == env_id
    assert sim.decoder.config.max_seq_len >= sim.layout.length(16)  # one 16-frame clip: 8 demo + 4 query + 4
    start = np.load(resolve_model(name) / "start_frames.npy")[:2]
    out = sim.rollout(start, action, seed=0)
    assert out.shape == (2, 1, 64, 64, 3) and out.dtype == np.uint8
    env = gym.make("vidit/Imagination-v0", model=name)
    assert env.reset(seed=0)[0].shape == (64, 64, 3)
    with pytest.raises(FileNotFoundError, match="robodesk-push-red"):
        VideoSimulator.from_pretrained("no-such-model")


def test_sb3_vec_env_steps_all_rollouts_and_fills_terminal_observation(sim, shard):
    from stable_baselines3 import PPO
    from worldmodel.sb3_vec_env import ImaginationVecEnv

    starts = EpisodeDataset(shard / "data").frames(3)[:3]
    venv = ImaginationVecEnv(ImaginationEnv(sim, starts, n_envs=3, max_steps=2, context_frames=2, seed=0))
    obs = venv.reset()
    assert obs.shape == (3, 64, 64, 3) and obs.dtype == np.uint8
    venv.step(np.array([1, 2, 3]))
    obs, reward, done, infos = venv.step(np.array([4, 5, 6]))
    assert done.all() and reward.shape == (3,)
    assert all(info["terminal_observation"].shape == (64, 64, 3) and info["TimeLimit.truncated"] for info in infos)
    assert venv.core.steps.tolist() == [0, 0, 0]  # restarted after the 2-step budget
    model = PPO("CnnPolicy", venv, n_steps=16, batch_size=24, n_epochs=1, seed=0, device="cpu", verbose=0)
    model.learn(total_timesteps=48)
    assert model.num_timesteps >= 48


def test_registered_imagination_env_makes_from_a_folder_with_start_frames(sim, shard, tmp_path):
    import gymnasium as gym
    import worldmodel.imagination  # noqa: F401  (registers vidit/Imagination-v0)
    root = sim.save_pretrained(tmp_path / "wm")
    with pytest.raises(ValueError, match="start_frames"):
        gym.make("vidit/Imagination-v0", model=str(root))
    np.save(root / "start_frames.npy", EpisodeDataset(shard / "data").frames(1)[:2])
    env = gym.make("vidit/Imagination-v0", model=str(root), context_frames=2)
    obs, _ = env.reset(seed=0)
    assert obs.shape == (64, 64, 3) and env.spec.max_episode_steps == 15
    assert env.step(env.action_space.sample())[0].shape == (64, 64, 3)
