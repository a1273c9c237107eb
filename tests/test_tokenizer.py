"""The VQ tokenizer, its trainer and token shards, on tiny models and a tiny Crafter dataset."""
import csv
import json
import warnings

import numpy as np
import pytest
import torch
from diffusers import VQModel
from safetensors.torch import load_file

from envs.collect import CollectConfig, collect
from envs.dataset import EpisodeDataset
from vidit.cli import UsageError, run
from worldmodel.tokenize_data import TokenizeConfig, load_shard, main as tokenize_main, tokenize_dataset
from worldmodel.tokenizer import VIDIT_FILE, VQTokenizer
from worldmodel.train_tokenizer import TrainTokenizerConfig, main as train_main, train

# The config.json of amused-256's VQ-GAN (146M params, 256x256 -> 16x16 ids, codebook 8192).
AMUSED_CONFIG = {
    "act_fn": "silu", "block_out_channels": [128, 256, 256, 512, 768], "down_block_types": ["DownEncoderBlock2D"] * 5,
    "in_channels": 3, "latent_channels": 64, "layers_per_block": 2, "lookup_from_codebook": True,
    "mid_block_add_attention": False, "norm_num_groups": 32, "norm_type": "group", "num_vq_embeddings": 8192,
    "out_channels": 3, "sample_size": 32, "scaling_factor": 0.18215, "up_block_types": ["UpDecoderBlock2D"] * 5,
    "vq_embed_dim": None, "force_upcast": True,
}
WEIGHTS = "diffusion_pytorch_model.safetensors"


def frames(*shape, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (*shape, 3), dtype=np.uint8)


def spread_codebook(tok):
    """Random-init codebooks are tiny, so every latent maps to one code; spread them to get varied ids."""
    torch.manual_seed(1)
    tok.model.quantize.embedding.weight.data.normal_(0, 0.3)
    return tok


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny convs on a shared 2-core box: two spinning OpenMP threads run up to 100x slower than one."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def tok():
    torch.manual_seed(0)
    return spread_codebook(VQTokenizer.from_preset("tiny"))


@pytest.fixture(scope="module")
def crafter(tmp_path_factory):
    out = tmp_path_factory.mktemp("crafter")
    collect(CollectConfig(env="crafter", policy="random", episodes=2, max_steps=10, out=out))
    return out


def amused_small(lookup_from_codebook=True):
    """The amused VQ config with its 5 blocks and layout, shrunk to a few channels."""
    cfg = dict(AMUSED_CONFIG, block_out_channels=[4, 4, 8, 8, 8], latent_channels=4, num_vq_embeddings=64,
               norm_num_groups=4, lookup_from_codebook=lookup_from_codebook)
    torch.manual_seed(0)
    return VQModel(**cfg)


def test_encode_decode_shapes_and_dtypes(tok):
    x = frames(2, 3, 64, 64)
    ids = tok.encode(x, batch_size=4)
    assert ids.shape == (2, 3, 4, 4) and ids.dtype == torch.int64
    assert 0 <= ids.min() and ids.max() < tok.codebook_size and len(ids.unique()) > 1
    assert torch.equal(tok.encode(torch.from_numpy(x)), ids)
    out = tok.decode(ids, batch_size=5)
    assert out.shape == (2, 3, 64, 64, 3) and out.dtype == torch.uint8
    assert (tok.grid, tok.tokens_per_frame, tok.frame_size) == ((4, 4), 16, 64)
    with pytest.raises(ValueError, match="uint8"):
        tok.encode(x.astype(np.float32))


def model_reconstruction(model, x):
    pixels = torch.from_numpy(x).permute(0, 3, 1, 2).float() / 255
    with torch.no_grad():
        out = model(pixels).sample
    return out.clamp(0, 1).mul(255).round().to(torch.uint8).permute(0, 2, 3, 1)


def test_decode_of_encode_is_the_models_own_reconstruction(tok):
    x = frames(1, 4, 64, 64)
    ours = tok.decode(tok.encode(x))[0].int()
    assert (ours - model_reconstruction(tok.model, x[0]).int()).abs().max() <= 1


def test_save_load_gives_identical_ids(tok, tmp_path):
    x = frames(1, 3, 64, 64)
    tok.save_pretrained(tmp_path / "t")
    assert {p.name for p in (tmp_path / "t").iterdir()} >= {"config.json", WEIGHTS, VIDIT_FILE}
    loaded = VQTokenizer.from_pretrained(tmp_path / "t")
    assert loaded.frame_size == 64 and loaded.fingerprint() == tok.fingerprint()
    assert torch.equal(loaded.encode(x), tok.encode(x))
    with pytest.raises(ValueError, match="64x64"):
        VQTokenizer.from_pretrained(tmp_path / "t", frame_size=32)
    meta = json.loads((tmp_path / "t" / VIDIT_FILE).read_text())
    (tmp_path / "t" / VIDIT_FILE).write_text(json.dumps({**meta, "future_key": 1}))
    with pytest.warns(UserWarning, match="future_key"):
        VQTokenizer.from_pretrained(tmp_path / "t")
    with pytest.raises(FileNotFoundError, match="missing"):
        VQTokenizer.from_pretrained(tmp_path / "missing")


def test_real_amused_config_gives_16x16_ids():
    with torch.device("meta"):
        model = VQModel(**AMUSED_CONFIG)
    tok = VQTokenizer(model, 256)
    assert (tok.grid, tok.codebook_size) == ((16, 16), 8192)


@pytest.mark.parametrize("lookup", [True, False])
def test_amused_layout_folder_loads_unchanged(tmp_path, lookup):
    amused_small(lookup).save_pretrained(tmp_path / "vq")
    config = (tmp_path / "vq" / "config.json").read_text()
    tok = VQTokenizer.from_pretrained(tmp_path / "vq")
    assert not (tmp_path / "vq" / VIDIT_FILE).exists() and (tmp_path / "vq" / "config.json").read_text() == config
    assert tok.frame_size == 256
    x = frames(1, 2, 256, 256)
    ids = tok.encode(x)
    assert ids.shape == (1, 2, 16, 16)
    ours = tok.decode(ids)
    assert ours.shape == (1, 2, 256, 256, 3)
    assert (ours[0].int() - model_reconstruction(tok.model, x[0]).int()).abs().max() <= 1
    assert VQTokenizer.from_pretrained(tmp_path / "vq", frame_size=128).grid == (8, 8)


def test_wrong_frame_size_warns_once_and_works(tok):
    x = frames(1, 2, 48, 80)
    with pytest.warns(UserWarning, match="48x80.*64x64"):
        ids = tok.encode(x)
    assert ids.shape == (1, 2, 4, 4)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert torch.equal(tok.encode(torch.from_numpy(x)), ids)


def train_cfg(data, out, **kw):
    base = dict(data=(data,), out=out, preset="tiny", batch_size=4, lr=3e-3, heldout=0.5, epochs=100,
                max_steps=12, restart_every=4, checkpoint_every=3, eval_frames=8, seed=3)
    return TrainTokenizerConfig(**{**base, **kw})


def test_training_lowers_loss_and_resume_reproduces(tmp_path):
    data = tmp_path / "ds"
    collect(CollectConfig(env="crafter", policy="random", episodes=2, max_steps=10, out=data))
    full = train(train_cfg(data, tmp_path / "a"))
    assert np.mean(full["losses"][-3:]) < np.mean(full["losses"][:3])
    assert full["step"] == 12 and np.isfinite(full["heldout_psnr"])
    rows = list(csv.DictReader((tmp_path / "a" / "metrics.csv").open()))
    assert [int(r["step"]) for r in rows] == [2, 4, 6, 8, 10, 12]  # 11 train frames / batch 4: 2 steps an epoch

    train(train_cfg(data, tmp_path / "b", max_steps=7))
    collect(CollectConfig(env="crafter", policy="random", episodes=3, max_steps=10, out=data))  # data grows
    resumed = train(train_cfg(data, tmp_path / "b"))
    assert len(resumed["losses"]) == 5 and resumed["train_frames"] == full["train_frames"]
    a, b = load_file(tmp_path / "a" / WEIGHTS), load_file(tmp_path / "b" / WEIGHTS)
    assert all(torch.equal(a[k], b[k]) for k in a)
    tok = VQTokenizer.from_pretrained(tmp_path / "b")
    assert tok.encode(frames(1, 1, 64, 64)).shape == (1, 1, 4, 4)

    with pytest.raises(UsageError, match="lr"):
        train(train_cfg(data, tmp_path / "b", lr=1e-2))


def test_train_cli_bad_input_is_one_line(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        run(train_main, TrainTokenizerConfig, ["--data", str(tmp_path / "none"), "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and len(err.strip().splitlines()) == 1 and "meta/info.json" in err


def test_tokenize_dataset_shard_round_trip(tok, crafter, tmp_path):
    path = tokenize_dataset(tok, crafter, tmp_path / "s.npz", batch_size=7)
    shard = load_shard(path)
    data = EpisodeDataset(crafter)
    assert list(shard.episodes) == data.episodes == [0, 1]
    for i, e in enumerate(data.episodes):
        assert shard.ids[i].dtype == np.uint16 and shard.ids[i].shape == (11, 4, 4)
        assert np.array_equal(shard.ids[i], tok.encode(data.frames(e)[None])[0].numpy())
        assert shard.actions[i].dtype == np.float32 and np.array_equal(shard.actions[i], data.actions(e))
    assert shard.meta["dataset"]["env_id"] == "vidit/Crafter-v0"
    assert shard.meta["dataset"]["action_space"] == {"type": "discrete", "n": 17}
    assert shard.meta["tokenizer"]["fingerprint"] == tok.fingerprint() and shard.meta["tokenizer"]["grid"] == [4, 4]

    tok.save_pretrained(tmp_path / "tok")
    tokenize_main(TokenizeConfig(tokenizer=tmp_path / "tok", data=(crafter,), out=tmp_path / "shards"))
    again = load_shard(tmp_path / "shards" / f"{crafter.name}.npz")
    assert all(np.array_equal(a, b) for a, b in zip(again.ids, shard.ids))
