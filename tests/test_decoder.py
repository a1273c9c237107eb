"""The decoder, its KV-cache sampler and the Hugging Face export, on the tiny preset."""
from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F

from vidit.cli import run
from worldmodel.decoder import Decoder, DecoderConfig, decode_attention
from worldmodel.export_hf import ExportConfig, export_hf, main as export_main
from worldmodel.layout import Layout
from worldmodel.sampling import generate, generate_no_cache, generate_shared_prefix

A = 3  # action dim of the conditioned test model
LAYOUT = Layout(codebook_size=32, tokens_per_frame=4)  # vocab 34, as the tiny preset


def make(action_dim: int = 0, dtype: torch.dtype = torch.float32, seed: int = 0) -> Decoder:
    torch.manual_seed(seed)
    return Decoder(DecoderConfig.from_name("tiny", action_dim=action_dim)).to(dtype).eval()


def ids(b: int, length: int, seed: int = 1) -> torch.Tensor:
    return torch.randint(0, 34, (b, length), generator=torch.Generator().manual_seed(seed))


def action_feats(b: int, length: int, seed: int = 2, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Layout features for one random action per frame, covering ``length`` positions."""
    n_frames = (length - 1) // LAYOUT.tokens_per_frame
    acts = torch.randn(b, n_frames, A, generator=torch.Generator().manual_seed(seed), dtype=dtype)
    return LAYOUT.action_features(acts, length)


@torch.no_grad()
def test_causal_mask():
    model, x = make(), ids(2, 24)
    y = x.clone()
    y[:, 15] = (y[:, 15] + 1) % 34
    a, b = model(x), model(y)
    torch.testing.assert_close(a[:, :15], b[:, :15], rtol=0, atol=1e-6)
    assert not torch.allclose(a[:, 15:], b[:, 15:])


@torch.no_grad()
def test_kv_cache_logits_equal_full_forward():
    model, x = make(A), ids(2, 30)
    feats = action_feats(2, 30)
    full = model(x, actions=feats)
    model.setup_caches(max_batch=3, max_seq=40)  # larger than needed: rows and positions beyond stay unused
    steps = [model(x[:, :17], torch.arange(17), feats[:, :17])]
    for t in range(17, 30):
        steps.append(model(x[:, t:t + 1], torch.tensor([t]), feats[:, t:t + 1]))
    torch.testing.assert_close(torch.cat(steps, dim=1), full, rtol=0, atol=1e-5)


@pytest.mark.parametrize("temperature, top_k", [(1.0, None), (0.8, 5), (0.0, None)])
def test_cached_sampling_equals_no_cache(temperature, top_k):
    model = make(A, torch.float64)
    for length, n_new in [(9, 12), (5, 7)]:  # the second call reuses the first call's larger cache
        prompt, feats = ids(3, length, seed=length), action_feats(3, length + n_new, dtype=torch.float64)
        kw = dict(actions=feats, temperature=temperature, top_k=top_k)
        cached = generate(model, prompt, n_new, generator=torch.Generator().manual_seed(7), **kw)
        reference = generate_no_cache(model, prompt, n_new, generator=torch.Generator().manual_seed(7), **kw)
        assert cached.shape == (3, n_new)
        assert torch.equal(cached, reference)
        if top_k:
            logits = model(prompt, actions=feats[:, :length])[:, -1]  # the first id is in its top k
            assert (logits.gather(1, cached[:, :1]) >= logits.topk(top_k).values[:, -1:]).all()


def test_sampling_draws_only_from_the_generator():
    model, prompt = make(), ids(2, 6)
    a = generate(model, prompt, 10, generator=torch.Generator().manual_seed(3))
    torch.manual_seed(123)  # global RNG state must not matter
    b = generate(model, prompt, 10, generator=torch.Generator().manual_seed(3))
    c = generate(model, prompt, 10, generator=torch.Generator().manual_seed(4))
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_shared_prefix_equals_per_sample_generation():
    model, n, length, n_new = make(A, torch.float64), 4, 9, 8
    prefix = ids(1, length)
    # Rows share the prefix's features except the action on the last prefix frame (MPC's candidates).
    feats = action_feats(1, length + n_new, dtype=torch.float64).repeat(n, 1, 1)
    feats[:, length - 1, :A] = torch.randn(n, A, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    feats[:, length - 1, A] = 1.0
    for rows_feats in (None, feats):
        greedy = generate_shared_prefix(model, prefix, n, n_new, rows_feats, temperature=0)
        for i in range(n):  # greedy: each row alone gives the same ids
            alone = generate(model, prefix, n_new, None if rows_feats is None else rows_feats[i:i + 1], temperature=0)
            assert torch.equal(greedy[i:i + 1], alone)
        kw = dict(actions=rows_feats, temperature=1.0, top_k=10)
        shared = generate_shared_prefix(model, prefix, n, n_new, generator=torch.Generator().manual_seed(9), **kw)
        batched = generate(model, prefix.expand(n, -1), n_new, generator=torch.Generator().manual_seed(9), **kw)
        assert torch.equal(shared, batched)
    assert len({tuple(r) for r in greedy.tolist()}) > 1  # the per-row actions matter


@pytest.mark.parametrize("shared", [0, 7, 12])
def test_decode_attention_equals_sdpa(shared):
    g = torch.Generator().manual_seed(3)
    q, k, v = (torch.randn(shape, generator=g, dtype=torch.float64)
               for shape in [(5, 8, 1, 16), (5, 4, 12, 16), (5, 4, 12, 16)])
    k[1:, :, :shared], v[1:, :, :shared] = k[:1, :, :shared], v[:1, :, :shared]  # a prefix all rows share
    want = F.scaled_dot_product_attention(q, k, v, enable_gqa=True)
    assert torch.allclose(decode_attention(q, k, v, shared), want, atol=1e-12)


@torch.no_grad()
def test_a_new_prompt_ends_the_shared_prefix():
    """After sampling from one shared prefix, per-row prompts must not read it from row 0."""
    model, n_new = make(), 6
    generate_shared_prefix(model, ids(1, 9), 4, n_new, temperature=0)
    assert model.layers[0].attention.kv_cache.shared == 9
    prompts = ids(4, 9, seed=7)
    assert torch.equal(generate(model, prompts, n_new, temperature=0),
                       generate_no_cache(model, prompts, n_new, temperature=0))
    assert model.layers[0].attention.kv_cache.shared == 0


@torch.no_grad()
def test_action_conditioning_changes_only_later_logits():
    model, x = make(A), ids(2, 20)
    zeros = torch.zeros(2, 20, A + 1)
    torch.testing.assert_close(model(x), model(x, actions=zeros), rtol=0, atol=0)
    p = LAYOUT.action_position(2)
    feats = LAYOUT.action_features(torch.randn(2, 1, A), 20, first_frame=2)
    assert feats[:, p].abs().sum() > 0 and feats[:, :p].abs().sum() == 0
    plain, acted = model(x), model(x, actions=feats)
    torch.testing.assert_close(plain[:, :p], acted[:, :p], rtol=0, atol=1e-6)
    assert (plain[:, p:] - acted[:, p:]).abs().amax(dim=(0, 2)).min() > 1e-6
    with pytest.raises(ValueError, match="action_dim 0"):
        make()(x, actions=zeros)


def test_frame_span_puts_each_action_at_every_position_predicting_its_next_frame():
    span = Layout(codebook_size=32, tokens_per_frame=4, action_span="frame")
    acts = torch.randn(2, 2, A)
    feats = span.action_features(acts, 17, first_frame=1)  # [bos] + 4 frames of 4 ids
    p = span.action_position(1)  # the last token of frame 1 predicts frame 2's first
    assert feats[:, :p].abs().sum() == 0
    torch.testing.assert_close(feats[:, p:p + 4, :A], acts[:, :1].expand(-1, 4, -1))
    torch.testing.assert_close(feats[:, p + 4:p + 8, :A], acts[:, 1:].expand(-1, 4, -1))
    assert (feats[:, p:p + 8, A] == 1).all() and feats[:, p + 8:].abs().sum() == 0
    with pytest.raises(ValueError, match="past the sequence length"):
        span.action_features(acts, 15, first_frame=1)
    with pytest.raises(ValueError, match="action_span"):
        Layout(32, 4, action_span="frames")


@torch.no_grad()
def test_save_load_round_trip_and_checks(tmp_path):
    model, x = make(A), ids(2, 16)
    model.save_pretrained(tmp_path / "dec")
    loaded = Decoder.from_pretrained(tmp_path / "dec", expect={"vocab_size": 34, "action_dim": A})
    assert loaded.config == model.config
    assert torch.equal(loaded(x, actions=action_feats(2, 16)), model(x, actions=action_feats(2, 16)))

    with pytest.raises(ValueError, match=r"vocab_size 34 \(expected 514\), action_dim 3 \(expected 5\)") as e:
        Decoder.from_pretrained(tmp_path / "dec", expect={"vocab_size": 514, "action_dim": 5, "n_layer": 2})
    assert "\n" not in str(e.value) and "n_layer" not in str(e.value)

    cfg_file = tmp_path / "dec" / "config.json"
    cfg_file.write_text(json.dumps({**json.loads(cfg_file.read_text()), "future_knob": 1}))
    with pytest.warns(UserWarning, match="future_knob"):
        Decoder.from_pretrained(tmp_path / "dec")
    with pytest.raises(FileNotFoundError, match="no decoder at"):
        Decoder.from_pretrained(tmp_path / "nowhere")

    model.save_pretrained(tmp_path / "bf16", dtype=torch.bfloat16)  # how shipped models are stored
    half = Decoder.from_pretrained(tmp_path / "bf16")
    assert all(p.dtype == torch.float32 for p in half.parameters())
    assert (tmp_path / "bf16" / "model.safetensors").stat().st_size < 0.6 * (tmp_path / "dec" / "model.safetensors").stat().st_size
    assert torch.allclose(half(x), model(x), atol=0.05)


def test_prompt_too_long_names_the_limit():
    model = make()
    with pytest.raises(ValueError, match="max_seq_len 64"):
        model(ids(1, 65))
    with pytest.raises(ValueError, match="max_seq_len is 64"):
        generate(model, ids(1, 60), 10)
    with pytest.raises(ValueError, match="max_seq_len 64"):
        model.setup_caches(1, 65)


@torch.no_grad()
def test_hf_export_gives_equal_logits(tmp_path, capsys):
    from transformers import LlamaForCausalLM

    model, x = make(), ids(2, 40)
    model.save_pretrained(tmp_path / "wm" / "decoder")  # a world-model folder holding decoder/
    run(export_main, ExportConfig, [str(tmp_path / "wm"), str(tmp_path / "hf")])
    hf = LlamaForCausalLM.from_pretrained(tmp_path / "hf").eval()
    torch.testing.assert_close(hf(x).logits, model(x), rtol=0, atol=1e-5)
    assert hf.config.num_key_value_heads == 2 and not hf.config.tie_word_embeddings

    with pytest.warns(UserWarning, match="action_proj"):
        export_hf(make(A), tmp_path / "hf_actions")
    capsys.readouterr()
    with pytest.raises(SystemExit) as e:
        run(export_main, ExportConfig, [str(tmp_path / "nowhere"), str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert e.value.code == 2 and err.count("\n") == 1 and "nowhere" in err


@pytest.mark.parametrize("name, low, high", [
    ("tiny", 1e4, 1e5), ("small", 4e6, 8e6), ("300M", 2.8e8, 3.5e8), ("700M", 6.5e8, 7.5e8), ("1.1B", 0.95e9, 1.2e9),
])
def test_presets_build(name, low, high):
    config = DecoderConfig.from_name(name)
    big = config.dim >= 1024
    with torch.device("meta" if big else "cpu"):  # the paper's sizes are only counted, never allocated
        model = Decoder(config)
    n = sum(p.numel() for p in model.parameters())
    print(f"{name}: {n / 1e6:.2f}M parameters")
    assert low < n < high
    if not big:
        assert model(torch.zeros(1, 3, dtype=torch.long)).shape == (1, 3, config.vocab_size)
