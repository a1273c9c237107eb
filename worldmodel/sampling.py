"""Sampling from the decoder with its KV cache: prefill, decode one, decode n (gpt-fast's shape).

All randomness comes from the ``torch.Generator`` passed in: each sampling step draws one
``[B, vocab]`` block of exponential noise (``argmax(p / q)`` with ``q ~ Exp(1)`` is a draw from
``p``), so the cached path, the no-cache reference and the shared-prefix path consume the same
stream and give the same ids for the same seed.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import torch

from worldmodel.decoder import Decoder


@dataclass(frozen=True)
class SamplingConfig:
    """How the world model samples ids, the same for every call (``imagine``, ``rollout``, the imagination env);
    the seed is each call's own argument."""
    temperature: float = field(default=1.0, metadata={"help": "world-model sampling temperature (0: greedy)"})
    top_k: Optional[int] = field(default=None, metadata={"help": "sample among the k likeliest ids (none: all)"})
    guidance: float = field(default=1.0, metadata={
        "help": "action-conditioned rollouts: classifier-free guidance on the actions (1: none; >1 follows the "
                "actions harder, at 2x compute)"})

    def __post_init__(self):
        if self.temperature < 0 or (self.top_k is not None and self.top_k < 1):
            raise ValueError(f"--temperature must be >= 0 and --top-k >= 1, got {self.temperature} and {self.top_k}")

    @property
    def guided(self) -> bool:
        return self.guidance != 1.0


def sample(logits: torch.Tensor, temperature: float = 1.0, top_k: int | None = None,
           generator: torch.Generator | None = None, vocab: int | None = None) -> torch.Tensor:
    """Ids ``[B]`` from ``logits [B, V]``, among the first ``vocab`` ids if given (e.g. codebook ids
    only, never ``[bos]``/``[eos]``); temperature 0 is greedy and draws no randomness."""
    logits = logits[:, :vocab]
    if temperature == 0:
        return logits.argmax(dim=-1)
    logits = logits.float() / temperature
    if top_k is not None and top_k < logits.shape[-1]:
        kth = logits.topk(top_k, dim=-1).values[:, -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    probs = logits.softmax(dim=-1)
    noise = torch.empty_like(probs).exponential_(1, generator=generator)
    return (probs / noise).argmax(dim=-1)


def _check_request(model: Decoder, prompt_len: int, n_new: int, batch: int, actions: torch.Tensor | None) -> int:
    """Validate a generation request; return the number of cache positions it needs."""
    limit = model.config.max_seq_len
    if prompt_len < 1 or n_new < 1:
        raise ValueError(f"need a prompt of >= 1 token and n_new >= 1, got {prompt_len} and {n_new}")
    needed = prompt_len + n_new - 1  # the last new token is sampled, never fed back
    if needed > limit:
        raise ValueError(f"a prompt of {prompt_len} tokens plus {n_new} new ones needs {needed} positions; "
                         f"max_seq_len is {limit}")
    if actions is not None and tuple(actions.shape[:2]) != (batch, prompt_len + n_new):
        raise ValueError(f"action features have shape {tuple(actions.shape)}; expected "
                         f"({batch}, {prompt_len + n_new}, action_dim + 1) for prompt + new tokens")
    return needed


def _ensure_cache(model: Decoder, batch: int, length: int) -> None:
    """Allocate the KV cache unless the current one already holds ``batch x length``."""
    shape = model.cache_shape
    if shape is None or shape[0] < batch or shape[1] < length:
        model.setup_caches(batch, length)


def _positions(start: int, stop: int, device: torch.device) -> torch.Tensor:
    return torch.arange(start, stop, device=device)


def _slice(actions: torch.Tensor | None, start: int, stop: int) -> torch.Tensor | None:
    return None if actions is None else actions[:, start:stop]


def prefill(model: Decoder, ids: torch.Tensor, start: int = 0, actions: torch.Tensor | None = None) -> torch.Tensor:
    """Run ``ids [B, L]`` at cache positions ``start .. start+L-1``; return the last logits ``[B, V]``."""
    return model(ids, _positions(start, start + ids.shape[1], ids.device), actions)[:, -1]


def decode_one(model: Decoder, token: torch.Tensor, pos: int, actions: torch.Tensor | None = None) -> torch.Tensor:
    """Feed one token per row (``[B]``) at position ``pos``; return the next logits ``[B, V]``."""
    return model(token[:, None], _positions(pos, pos + 1, token.device), actions)[:, -1]


def decode_n(model: Decoder, logits: torch.Tensor, start: int, n_new: int, actions: torch.Tensor | None,
             temperature: float, top_k: int | None, generator: torch.Generator | None,
             vocab: int | None = None, guidance: float | None = None) -> torch.Tensor:
    """Sample ``n_new`` ids ``[B, n_new]`` from ``logits`` onward, feeding each at ``start``, ``start+1``, ...

    ``guidance`` w (classifier-free guidance on the actions): the rows are two halves, action-conditioned
    then unconditioned; each id is drawn from ``uncond + w * (cond - uncond)`` and fed to both halves,
    so ``B / 2`` sequences come back.
    """
    def pick(logits: torch.Tensor) -> torch.Tensor:
        if guidance is not None:
            cond, uncond = logits.chunk(2)
            logits = uncond + guidance * (cond - uncond)
        return sample(logits, temperature, top_k, generator, vocab)

    out = [pick(logits)]
    for pos in range(start, start + n_new - 1):
        fed = out[-1] if guidance is None else out[-1].repeat(2)
        logits = decode_one(model, fed, pos, _slice(actions, pos, pos + 1))
        out.append(pick(logits))
    return torch.stack(out, dim=1)


@torch.no_grad()
def generate(model: Decoder, prompt: torch.Tensor, n_new: int, actions: torch.Tensor | None = None,
             temperature: float = 1.0, top_k: int | None = None,
             generator: torch.Generator | None = None, vocab: int | None = None) -> torch.Tensor:
    """Continue ``prompt [B, L]`` by ``n_new`` ids ``[B, n_new]`` with the KV cache.

    ``actions``: features ``[B, L + n_new, A + 1]`` for the prompt and the new positions.
    """
    b, length = prompt.shape
    _ensure_cache(model, b, _check_request(model, length, n_new, b, actions))
    logits = prefill(model, prompt, 0, _slice(actions, 0, length))
    return decode_n(model, logits, length, n_new, actions, temperature, top_k, generator, vocab)


@torch.no_grad()
def generate_shared_prefix(model: Decoder, prefix: torch.Tensor, n: int, n_new: int,
                           actions: torch.Tensor | None = None, temperature: float = 1.0,
                           top_k: int | None = None, generator: torch.Generator | None = None,
                           vocab: int | None = None, guidance: float | None = None) -> torch.Tensor:
    """``n`` continuations ``[n, n_new]`` of one ``prefix [1, P]``, its KV cache computed once
    (``n / 2`` with ``guidance``: see :func:`decode_n`).

    ``actions [n, P + n_new, A + 1]`` may differ between rows from some position on (e.g. MPC's
    candidate action at the context's last token): the part every row shares is prefilled at batch
    1 and broadcast, the rest of the prefix at batch ``n``. Equal to ``generate(model,
    prefix.expand(n, -1), ...)`` with the same generator.
    """
    if prefix.shape[0] != 1:
        raise ValueError(f"the shared prefix must be one row, got {prefix.shape[0]}")
    length = prefix.shape[1]
    _ensure_cache(model, n, _check_request(model, length, n_new, n, actions))
    shared = length
    if actions is not None:
        differs = (actions[:, :length] != actions[:1, :length]).any(-1).any(0)
        shared = int(differs.nonzero()[0]) if differs.any() else length
    if shared:
        first = None if actions is None else actions[:1, :shared]
        logits = prefill(model, prefix[:, :shared], 0, first).expand(n, -1)
        model.broadcast_cache(n, shared)
    if shared < length:
        logits = prefill(model, prefix[:, shared:].expand(n, -1), shared, _slice(actions, shared, length))
    return decode_n(model, logits, length, n_new, actions, temperature, top_k, generator, vocab, guidance)


@torch.no_grad()
def generate_no_cache(model: Decoder, prompt: torch.Tensor, n_new: int, actions: torch.Tensor | None = None,
                      temperature: float = 1.0, top_k: int | None = None,
                      generator: torch.Generator | None = None) -> torch.Tensor:
    """Reference for tests: like :func:`generate` but a full causal forward for every new id."""
    b, length = prompt.shape
    _check_request(model, length, n_new, b, actions)
    seq = prompt
    for _ in range(n_new):
        logits = model(seq, actions=_slice(actions, 0, seq.shape[1]))[:, -1]
        seq = torch.cat([seq, sample(logits, temperature, top_k, generator)[:, None]], dim=1)
    return seq[:, length:]
