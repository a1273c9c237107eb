"""The VidIT decoder: a LLaMA block stack over VQ ids, with a static KV cache (gpt-fast style).

``forward(idx, input_pos)`` is one call for training (``input_pos=None``: full causal pass),
prefill (many positions) and one-token decode (``input_pos`` indexes the cache set up by
:meth:`Decoder.setup_caches`). Weights follow HF Llama's conventions (RoPE by ``rotate_half`` over
the two halves of each head, RMSNorm in float32, SwiGLU, no biases), so ``export_hf`` only renames.

Optional action conditioning (iVideoGPT style, see :mod:`worldmodel.layout`): per-position features
``[B, L, action_dim + 1]`` go through ``action_proj`` (no bias) and are added to the token
embeddings, so all-zero features (or ``actions=None``) leave the plain VidIT model.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from vidit.pretrained import Pretrained

VERSION = 1

# Presets. vocab 8194 = amused's 8192 codes + [bos] + [eos]; 4098 = [bos] + 16 frames x 256 ids + [eos].
# The paper's three sizes (VidIT, Zhang et al. 2024: 300M / 700M / 1.1B, LLaMA architecture) with
# LLaMA-style widths: intermediate = 8/3 * dim rounded up to a multiple of 256 (LLaMA, Touvron et
# al. 2023); 1.1B is TinyLlama's shape (22 layers, 2048 wide, 32 heads, 4 KV heads, 5632 hidden).
# "small" is the shipped domain model: 64x64 frames as 8x8 ids, 16-frame clips, trainable on a CPU;
# "nano" and "micro" are its smaller siblings for the scaling experiment (0.23 M, 1.05 M params with 5-d actions).
PRESETS: dict[str, dict[str, Any]] = {
    "tiny": dict(vocab_size=34, n_layer=2, n_head=4, n_kv_head=2, dim=32, intermediate_size=64, max_seq_len=64),
    "nano": dict(vocab_size=1026, n_layer=2, n_head=2, n_kv_head=1, dim=64, intermediate_size=192, max_seq_len=1026),
    "micro": dict(vocab_size=1026, n_layer=4, n_head=4, n_kv_head=2, dim=128, intermediate_size=384,
                  max_seq_len=1026),
    "small": dict(vocab_size=1026, n_layer=6, n_head=8, n_kv_head=4, dim=256, intermediate_size=768,
                  max_seq_len=1026),
    "300M": dict(vocab_size=8194, n_layer=24, n_head=16, dim=1024, intermediate_size=2816, max_seq_len=4098),
    "700M": dict(vocab_size=8194, n_layer=24, n_head=16, dim=1536, intermediate_size=4096, max_seq_len=4098),
    "1.1B": dict(vocab_size=8194, n_layer=22, n_head=32, n_kv_head=4, dim=2048, intermediate_size=5632,
                 max_seq_len=4098),
}


@dataclass
class DecoderConfig:
    vocab_size: int
    n_layer: int
    n_head: int
    dim: int
    intermediate_size: int
    max_seq_len: int
    n_kv_head: int | None = None  # None: n_head (no grouped-query attention)
    rope_theta: float = 10000.0
    norm_eps: float = 1e-5
    action_dim: int = 0  # 0: no action input
    version: int = VERSION

    def __post_init__(self):
        if self.n_kv_head is None:
            self.n_kv_head = self.n_head
        if self.dim % self.n_head or self.n_head % self.n_kv_head or self.head_dim % 2:
            raise ValueError(f"dim {self.dim}, n_head {self.n_head}, n_kv_head {self.n_kv_head}: dim must split "
                             "into n_head even-sized heads and n_head must be a multiple of n_kv_head")

    @property
    def head_dim(self) -> int:
        return self.dim // self.n_head

    @classmethod
    def from_name(cls, name: str, **overrides: Any) -> "DecoderConfig":
        """A preset by name (``tiny``, ``small``, ``300M``, ``700M``, ``1.1B``) with fields overridden."""
        if name not in PRESETS:
            raise ValueError(f"unknown decoder preset {name!r}; choose from {', '.join(PRESETS)}")
        return cls(**{**PRESETS[name], **overrides})


class KVCache(nn.Module):
    """Keys and values of one layer, allocated once: values ``[max_batch, n_kv_head, max_seq, head_dim]``,
    keys stored transposed, ``[max_batch, n_kv_head, head_dim, max_seq]``, so that one-token attention's
    ``q @ k^T`` reads keys along contiguous rows (on the CPU, 6.5 against 25 ms a layer for 200 rows x 760 keys).

    ``shared`` leading positions hold the same keys in rows ``:shared_rows`` (set by
    :meth:`Decoder.broadcast_cache`, cut back by :meth:`Decoder.hidden` when it writes before them),
    so one-token decoding reads them once for all rows."""

    def __init__(self, max_batch: int, n_kv_head: int, max_seq: int, head_dim: int,
                 dtype: torch.dtype, device: torch.device):
        super().__init__()
        self.register_buffer("kt", torch.zeros((max_batch, n_kv_head, head_dim, max_seq), dtype=dtype, device=device),
                             persistent=False)
        self.register_buffer("v", torch.zeros((max_batch, n_kv_head, max_seq, head_dim), dtype=dtype, device=device),
                             persistent=False)
        self.shared, self.shared_rows = 0, 0

    @property
    def dtype(self) -> torch.dtype:
        return self.v.dtype

    def update(self, input_pos: torch.Tensor, k: torch.Tensor, v: torch.Tensor, end: int):
        """Write ``k, v [B, H, L, D]`` at ``input_pos``; return rows ``:B`` of the cache up to ``end``,
        both ``[B, H, end, D]`` (the keys a transposed view)."""
        b, start = k.shape[0], int(input_pos[0])
        at = slice(start, start + k.shape[2])  # positions ascend by one (Decoder.hidden checks): a slice, not a scatter
        self.kt[:b, :, :, at] = k.transpose(-1, -2)
        self.v[:b, :, at] = v
        return self.kt[:b, :, :, :end].transpose(-1, -2), self.v[:b, :, :end]

    def broadcast(self, n: int, length: int) -> None:
        """Copy row 0's positions ``[0, length)`` into rows ``1 .. n-1``."""
        self.kt[1:n, :, :, :length] = self.kt[:1, :, :, :length]
        self.v[1:n, :, :length] = self.v[:1, :, :length]
        self.shared, self.shared_rows = length, n


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x.float()
        h = h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.weight * h.to(x.dtype)


def rope_tables(head_dim: int, max_seq: int, theta: float, device: torch.device | None = None):
    """cos, sin ``[max_seq, head_dim]`` with the frequencies repeated over both halves (HF Llama)."""
    inv_freq = 1.0 / theta ** (torch.arange(0, head_dim, 2, device=device).float() / head_dim)
    freqs = torch.outer(torch.arange(max_seq, device=device).float(), inv_freq)
    emb = torch.cat([freqs, freqs], dim=-1)
    return emb.cos(), emb.sin()


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate ``x [B, H, L, D]`` by position: pairs are (i, i + D/2), as HF's ``rotate_half``."""
    x1, x2 = x.chunk(2, dim=-1)
    rotated = torch.cat([-x2, x1], dim=-1)
    return x * cos.to(x.dtype) + rotated * sin.to(x.dtype)


class Attention(nn.Module):
    def __init__(self, cfg: DecoderConfig):
        super().__init__()
        self.n_head, self.n_kv_head, self.head_dim = cfg.n_head, cfg.n_kv_head, cfg.head_dim
        self.wq = nn.Linear(cfg.dim, cfg.n_head * cfg.head_dim, bias=False)
        self.wk = nn.Linear(cfg.dim, cfg.n_kv_head * cfg.head_dim, bias=False)
        self.wv = nn.Linear(cfg.dim, cfg.n_kv_head * cfg.head_dim, bias=False)
        self.wo = nn.Linear(cfg.n_head * cfg.head_dim, cfg.dim, bias=False)
        self.kv_cache: KVCache | None = None

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor,
                input_pos: torch.Tensor | None, mask: torch.Tensor | None) -> torch.Tensor:
        b, l, _ = x.shape
        q = self.wq(x).view(b, l, self.n_head, self.head_dim).transpose(1, 2)
        k = self.wk(x).view(b, l, self.n_kv_head, self.head_dim).transpose(1, 2)
        v = self.wv(x).view(b, l, self.n_kv_head, self.head_dim).transpose(1, 2)
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        if input_pos is None:
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True)
        else:
            cache = self.kv_cache
            q = q.to(cache.dtype)  # a float32 cache under bfloat16 weights: attention stays float32
            k, v = cache.update(input_pos, k, v, end=mask.shape[-1])
            if l == 1:
                y = decode_attention(q, k, v, cache.shared if b <= cache.shared_rows else 0)
            else:
                y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, enable_gqa=True)
        return self.wo(y.transpose(1, 2).reshape(b, l, -1).to(x.dtype))


def decode_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, shared: int = 0) -> torch.Tensor:
    """Attention of one query per row (``q [B, H, 1, D]``, the newest position, so every cached key is
    visible) over ``k, v [B, H_kv, L, D]`` (grouped heads, not copied), as SDPA but faster on the CPU.

    Keys ``:shared`` are the same in every row (a shared prompt prefix): they are read from row 0 in
    one matrix product for all rows and queries (cascade attention), which makes sampling many
    continuations of one long prompt cost little more than its per-row suffixes."""
    b, h, _, d = q.shape
    kvh = k.shape[1]
    g = h // kvh
    q = q.reshape(b, kvh, g, d) * d ** -0.5
    qs = q.transpose(0, 1).reshape(kvh, b * g, d)  # every row's queries against row 0's shared keys
    scores = torch.cat([(qs @ k[0, :, :shared].transpose(-1, -2)).view(kvh, b, g, shared).transpose(0, 1),
                        q @ k[:, :, shared:].transpose(-1, -2)], dim=-1)
    scores = scores.softmax(-1, dtype=torch.promote_types(q.dtype, torch.float32)).to(q.dtype)
    p_shared = scores[..., :shared].transpose(0, 1).reshape(kvh, b * g, shared)
    y = (p_shared @ v[0, :, :shared]).view(kvh, b, g, d).transpose(0, 1) + scores[..., shared:] @ v[:, :, shared:]
    return y.reshape(b, h, 1, d)


class FeedForward(nn.Module):
    """SwiGLU: ``down(silu(gate(x)) * up(x))``."""

    def __init__(self, cfg: DecoderConfig):
        super().__init__()
        self.gate = nn.Linear(cfg.dim, cfg.intermediate_size, bias=False)
        self.up = nn.Linear(cfg.dim, cfg.intermediate_size, bias=False)
        self.down = nn.Linear(cfg.intermediate_size, cfg.dim, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down(F.silu(self.gate(x)) * self.up(x))


class Block(nn.Module):
    def __init__(self, cfg: DecoderConfig):
        super().__init__()
        self.attention_norm = RMSNorm(cfg.dim, cfg.norm_eps)
        self.attention = Attention(cfg)
        self.ffn_norm = RMSNorm(cfg.dim, cfg.norm_eps)
        self.feed_forward = FeedForward(cfg)

    def forward(self, x, cos, sin, input_pos, mask):
        x = x + self.attention(self.attention_norm(x), cos, sin, input_pos, mask)
        return x + self.feed_forward(self.ffn_norm(x))


class Decoder(Pretrained, nn.Module):
    """``Decoder.from_pretrained(folder, expect={"vocab_size": 1026}, device=...)`` loads a saved decoder."""
    config_class, shipped, kind = DecoderConfig, Path(__file__).parent / "models", "decoder"

    def __init__(self, config: DecoderConfig):
        super().__init__()
        self.config = config
        self.tok_embeddings = nn.Embedding(config.vocab_size, config.dim)
        self.action_proj = nn.Linear(config.action_dim + 1, config.dim, bias=False) if config.action_dim else None
        self.layers = nn.ModuleList(Block(config) for _ in range(config.n_layer))
        self.norm = RMSNorm(config.dim, config.norm_eps)
        self.lm_head = nn.Linear(config.dim, config.vocab_size, bias=False)
        self._set_rope()
        self.apply(self._init_weights)

    def _set_rope(self) -> None:
        cos, sin = rope_tables(self.config.head_dim, self.config.max_seq_len, self.config.rope_theta,
                               self.lm_head.weight.device)
        self.register_buffer("rope_cos", cos, persistent=False)
        self.register_buffer("rope_sin", sin, persistent=False)

    def _init_weights(self, m: nn.Module) -> None:
        if isinstance(m, (nn.Linear, nn.Embedding)):
            nn.init.normal_(m.weight, std=0.02)

    @property
    def cache_shape(self) -> tuple[int, int] | None:
        """(max_batch, max_seq) of the allocated KV cache, or None."""
        cache = self.layers[0].attention.kv_cache
        return None if cache is None else (cache.v.shape[0], cache.v.shape[2])

    def setup_caches(self, max_batch: int, max_seq: int, dtype: torch.dtype | None = None) -> None:
        """Allocate the KV cache of every layer once; later calls with ``input_pos`` use it. It is float32
        (or wider) unless ``dtype`` says otherwise: bfloat16 layers attend in float32."""
        if max_seq > self.config.max_seq_len:
            raise ValueError(f"a KV cache of {max_seq} positions exceeds max_seq_len {self.config.max_seq_len}")
        w = self.lm_head.weight
        for layer in self.layers:
            layer.attention.kv_cache = KVCache(max_batch, self.config.n_kv_head, max_seq, self.config.head_dim,
                                               dtype or torch.promote_types(w.dtype, torch.float32), w.device)

    @torch.no_grad()
    def broadcast_cache(self, n: int, prefix_len: int) -> None:
        """Copy row 0's cached positions ``[0, prefix_len)`` into rows ``1 .. n-1`` (shared prompt prefix)."""
        max_batch, max_seq = self.cache_shape or (0, 0)
        if n > max_batch or prefix_len > max_seq:
            raise ValueError(f"cannot broadcast {prefix_len} positions to {n} rows of a "
                             f"{max_batch} x {max_seq} KV cache")
        for layer in self.layers:
            layer.attention.kv_cache.broadcast(n, prefix_len)

    def forward(self, idx: torch.Tensor, input_pos: torch.Tensor | None = None,
                actions: torch.Tensor | None = None) -> torch.Tensor:
        """Logits ``[B, L, vocab]`` for ids ``idx [B, L]``.

        ``input_pos`` (``[L]``, consecutive): positions of ``idx`` in the KV cache, which is read and
        written; None: a full causal pass from position 0 without the cache (training).
        ``actions``: per-position features ``[B, L, action_dim + 1]`` (see :mod:`worldmodel.layout`).
        """
        return self.lm_head(self.hidden(idx, input_pos, actions))

    def hidden(self, idx: torch.Tensor, input_pos: torch.Tensor | None = None,
               actions: torch.Tensor | None = None) -> torch.Tensor:
        """The last layer's normed hidden states ``[B, L, dim]`` (what the LM head and P-Acc probes read)."""
        b, l = idx.shape
        if l > self.config.max_seq_len:
            raise ValueError(f"a sequence of {l} tokens exceeds max_seq_len {self.config.max_seq_len}")
        x = self.tok_embeddings(idx)
        if actions is not None:
            x = x + self.action_proj(self._check_actions(actions, b, l).to(x.dtype))
        if input_pos is None:
            cos, sin, mask = self.rope_cos[:l], self.rope_sin[:l], None
        else:
            start, end = self._check_positions(input_pos, b, l)
            for layer in self.layers:  # positions from `start` on are rewritten: no longer shared
                cache = layer.attention.kv_cache
                cache.shared = min(cache.shared, start)
            cos, sin = self.rope_cos[input_pos], self.rope_sin[input_pos]
            mask = torch.arange(end, device=idx.device) <= input_pos[:, None]  # [L, end]: keys up to each query
        for layer in self.layers:
            x = layer(x, cos, sin, input_pos, mask)
        return self.norm(x)

    def _check_actions(self, actions: torch.Tensor, b: int, l: int) -> torch.Tensor:
        want = (b, l, self.config.action_dim + 1)
        if self.action_proj is None:
            raise ValueError("this decoder has no action input (action_dim 0); pass actions=None")
        if tuple(actions.shape) != want:
            raise ValueError(f"action features have shape {tuple(actions.shape)}; expected {want}")
        return actions

    def _check_positions(self, input_pos: torch.Tensor, b: int, l: int) -> tuple[int, int]:
        """Validate ``input_pos`` against the cache; return its first position and one past its last."""
        if self.cache_shape is None:
            raise RuntimeError("input_pos needs a KV cache: call setup_caches(max_batch, max_seq) first")
        max_batch, max_seq = self.cache_shape
        start, end = (int(p) for p in input_pos[[0, -1]].tolist())
        end += 1
        if input_pos.shape != (l,) or b > max_batch or end > max_seq:
            raise ValueError(f"positions up to {end} for {b} x {l} ids do not fit input_pos of shape "
                             f"{tuple(input_pos.shape)} and a {max_batch} x {max_seq} KV cache")
        if end - start != l:
            raise ValueError(f"input_pos must be consecutive positions start .. start + {l - 1}, got {start} .. {end - 1}")
        return start, end

    # --- checkpoints (save_pretrained / from_pretrained: vidit.pretrained) ---------------------------

    @classmethod
    def build(cls, config: DecoderConfig) -> "Decoder":
        with torch.device("meta"):  # no time spent initialising weights that the checkpoint replaces
            return cls(config)

    def loaded(self) -> None:
        self._set_rope()
