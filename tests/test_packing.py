"""``train_worldmodel --pack same-task``: demo + query sequences of one task, on real Crafter episodes."""
import numpy as np
import pytest
import torch

from envs.collect import CollectConfig, collect
from worldmodel.clips import Episode, PackedSampler, load_episodes
from worldmodel.layout import Layout
from worldmodel.tokenize_data import load_shard, tokenize_dataset
from worldmodel.train_tokenizer import TrainTokenizerConfig
from worldmodel.train_tokenizer import train as train_tokenizer
from worldmodel.train_worldmodel import TrainConfig, train


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    root = tmp_path_factory.mktemp("pack")
    for i, task in enumerate(("chop_wood", "eat_cow")):
        collect(CollectConfig(env="crafter", task=task, policy="expert", episodes=4, max_steps=40,
                              out=root / task, seed=10 * i))
    train_tokenizer(TrainTokenizerConfig(data=(root / "chop_wood",), out=root / "tok", preset="tiny", max_steps=2,
                                         batch_size=8, eval_frames=8, heldout=0.25))
    from worldmodel.tokenizer import VQTokenizer
    tok = VQTokenizer.from_pretrained(root / "tok")
    for task in ("chop_wood", "eat_cow"):
        tokenize_dataset(tok, root / task, root / f"{task}.npz")
    return root


def test_shards_record_each_episodes_task_and_success(shards):
    shard = load_shard(shards / "eat_cow.npz")
    assert shard.tasks.tolist() == ["eat_cow"] * 4
    assert all(0 < s <= len(ids) - 1 for s, ids in zip(shard.success_at, shard.ids)), shard.success_at


def _episodes(n_tasks=3, per_task=4, length=16, success_at=9):
    """Episodes whose ids say (task, episode, frame), to read a packed sequence back."""
    eps = []
    for t in range(n_tasks):
        for e in range(per_task):
            ids = np.stack([np.full((2, 2), 1000 * t + 100 * e + f) for f in range(length)]).astype(np.uint16)
            eps.append(Episode(ids, np.zeros((length - 1, 1), np.float32), f"task{t}", success_at if e else -1))
    return eps


@pytest.mark.parametrize("other", [False, True])
def test_demo_shows_the_task_done_and_the_query_is_another_episode(other):
    eps = _episodes()
    sampler = PackedSampler(eps, frames=12, stride=1, demo_frames=8)
    d, _, q, _ = sampler.sample(256, torch.Generator().manual_seed(0), other_task=other)
    assert d.shape == (256, 8, 2, 2) and q.shape == (256, 4, 2, 2)
    (d_task, d_ep, d_last), (q_task, q_ep, _) = [(x // 1000, x // 100 % 10, x[:, -1] % 100) for x in (d[..., 0, 0], q[..., 0, 0])]
    d_task, d_ep, q_task, q_ep = d_task[:, 0], d_ep[:, 0], q_task[:, 0], q_ep[:, 0]
    assert ((d_task != q_task) if other else (d_task == q_task)).all()
    assert (d_ep != 0).all(), "an episode without success is never a demo"
    assert ((d_task != q_task) | (d_ep != q_ep)).all(), "the query comes from another episode"
    assert (d_last >= 9).all(), "the demo window reaches its episode's success"
    assert len(set(q[:, 0, 0, 0].tolist())) > 4, "queries start at various frames of various episodes"


def test_packing_needs_recorded_tasks():
    from vidit.cli import UsageError
    eps = [e._replace(task="") for e in _episodes()]
    with pytest.raises(UsageError, match="record a task"):
        PackedSampler(eps, frames=12, stride=1, demo_frames=8)


def test_packed_training_runs_resumes_and_logs_demo_use(shards, tmp_path):
    """The training rows are exactly the prompt the sampler builds (layout.sequence(demo, query)), the run
    resumes to the same weights, and it logs the query loss after same-task and other-task demos."""
    kw = dict(data=(shards / "chop_wood.npz", shards / "eat_cow.npz"), tokenizer=shards / "tok", preset="tiny",
              clip_frames=6, pack="same-task", demo_frames=4, single_ratio=0.25, batch_size=4, max_steps=4, warmup=2,
              eval_every=2, eval_clips=4, holdout=0.5)
    m = train(TrainConfig(out=tmp_path / "a", **kw))
    assert {"query_loss_same_demo", "query_loss_other_demo", "heldout_loss"} <= set(m)
    train(TrainConfig(out=tmp_path / "b", **{**kw, "max_steps": 2}))
    train(TrainConfig(out=tmp_path / "b", **kw))
    from worldmodel.decoder import Decoder
    a, b = (Decoder.from_pretrained(tmp_path / x / "decoder").state_dict() for x in "ab")
    assert all(torch.equal(a[k], b[k]) for k in a)
    episodes, meta = load_episodes(kw["data"])
    sampler = PackedSampler(episodes, 6, 1, 4)
    d, da, q, qa = sampler.sample(2, torch.Generator().manual_seed(0))
    layout = Layout(meta["codebook_size"], 16)
    seq = layout.sequence(d, q, eos=True)
    assert torch.equal(seq[:, :-1 - 2 * 16], layout.sequence(d, q[:, :-2])), "a training row starts with the prompt"
    feats = layout.clip_action_features([da, qa], [4, 2], seq.shape[1] - 1)
    cut = layout.action_position(3)  # the demo's last frame: no action leads into the query
    assert feats[:, cut, -1].eq(0).all() and feats[:, layout.action_position(4), -1].eq(1).all()
