"""``VideoSimulator``: the trained VidIT world model as a video simulator.

- ``imagine(demos, query, n_frames)``: continue ``query`` so that it imitates the demo clip(s)
  (paper default: one demo of 8 frames, 4 query frames, 4 generated).
- ``rollout(context, actions[N, H, A])``: N action-conditioned futures of the same context. The N
  samples share the context prefix: its KV cache is computed once (batch 1) and broadcast.

Frames are uint8 ``[T, H, W, 3]`` in and out (any size: resized + center-cropped to the
tokenizer's, with a warning). Randomness comes only from ``seed``.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from vidit.files import write_json
from worldmodel.actions import ActionEncoder
from worldmodel.decoder import Decoder
from worldmodel.layout import Layout
from worldmodel.metrics import psnr
from worldmodel.sampling import SamplingConfig, generate, generate_shared_prefix
from worldmodel.tokenizer import VQTokenizer

SHIPPED = Path(__file__).parent / "models"


def resolve_model(name_or_dir: str | Path) -> Path:
    """A world-model folder from a path or the name of a shipped model (``robodesk-push-red``...)."""
    path = Path(name_or_dir)
    if (path / "config.json").is_file():
        return path
    shipped = SHIPPED / str(name_or_dir)
    if (shipped / "config.json").is_file():
        return shipped
    known = sorted(p.name for p in SHIPPED.glob("*") if (p / "config.json").is_file())
    raise FileNotFoundError(f"no world model at {name_or_dir!r}: not a folder with config.json, nor a shipped "
                            f"model ({', '.join(known) or 'none shipped'})")


class VideoSimulator:
    def __init__(self, tokenizer: VQTokenizer, decoder: Decoder, config: dict, device: str | torch.device = "cpu",
                 dtype: torch.dtype = torch.float32):
        """``dtype`` bfloat16 runs the decoder's layers and the pixel decoder in bfloat16 (attention and
        its KV cache stay float32; frames are still encoded in float32): faster where the hardware has
        bfloat16 units, and approximate (samples differ from float32's for the same seed)."""
        self.tokenizer, self.decoder, self.config = tokenizer, decoder.eval(), config
        self.device, self.dtype = torch.device(device), dtype
        self.decoder.to(self.device, dtype)
        self.tokenizer.to(self.device)  # decoding thousands of predicted frames per MPC step is GPU work too
        if dtype != torch.float32:
            self.tokenizer.set_decode_dtype(dtype)
        self.layout = Layout(tokenizer.codebook_size, tokenizer.tokens_per_frame, config.get("action_span", "token"))
        self.actions = ActionEncoder(config.get("action_space"))
        if decoder.config.action_dim != self.actions.dim:
            raise ValueError(f"decoder takes {decoder.config.action_dim}-d actions but the config's action space "
                             f"encodes to {self.actions.dim}")

    @classmethod
    def from_pretrained(cls, name_or_dir: str | Path, device: str | torch.device = "cpu",
                        dtype: torch.dtype = torch.float32) -> "VideoSimulator":
        root = resolve_model(name_or_dir)
        config = json.loads((root / "config.json").read_text())
        tokenizer = VQTokenizer.from_pretrained(root / "tokenizer")
        enc = ActionEncoder(config.get("action_space"))
        decoder = Decoder.from_pretrained(root / "decoder", expect={
            "vocab_size": tokenizer.codebook_size + 2, "action_dim": enc.dim})
        return cls(tokenizer, decoder, config, device, dtype)

    def save_pretrained(self, path: str | Path, dtype: torch.dtype | None = None) -> Path:
        """Write the world-model folder :meth:`from_pretrained` reads: config.json, decoder/ (weights in
        ``dtype`` if given, e.g. bfloat16 for shipped models), tokenizer/."""
        path = Path(path)
        self.decoder.save_pretrained(path / "decoder", dtype=dtype)
        self.tokenizer.save_pretrained(path / "tokenizer")
        write_json(path / "config.json", self.config)
        return path

    @property
    def frame_size(self) -> int:
        return self.tokenizer.frame_size

    @property
    def max_frames(self) -> int:
        """Frames (context + predicted) that fit in the decoder's window."""
        return self.decoder.config.max_seq_len // self.layout.tokens_per_frame

    # -- public API ---------------------------------------------------------------------------
    @torch.no_grad()
    def imagine(self, demos: Sequence[np.ndarray], query: np.ndarray, n_frames: int = 4, n_samples: int = 1,
                sampling: SamplingConfig = SamplingConfig(), seed: int = 0) -> np.ndarray:
        """``n_samples`` continuations of ``query`` given demo clips: uint8 ``[n_samples, n_frames, H, W, 3]``."""
        clips = [self._encode(d) for d in demos] + [self._encode(query)]
        prefix = self.layout.sequence(*clips)
        ids = self._generate(prefix, n_samples, n_frames, None, sampling, seed)
        return self.decode(ids)

    @torch.no_grad()
    def imagine_batch(self, demos: Sequence[np.ndarray], queries: np.ndarray, n_frames: int = 4, n_samples: int = 1,
                      sampling: SamplingConfig = SamplingConfig(), seed: int = 0) -> np.ndarray:
        """Continuations of ``B`` queries ``[B, T, H, W, 3]`` (e.g. parallel episodes), sampled in one batch:
        uint8 ``[B, n_samples, n_frames, H, W, 3]``. Each demo clip is shared by all rows (``[T, H, W, 3]``)
        or given per row (``[B, T, H, W, 3]``)."""
        queries = np.asarray(queries)
        if queries.ndim != 5:
            raise ValueError(f"queries must be uint8 [B, T, H, W, 3], got shape {queries.shape}")
        b = len(queries)
        q = self.tokenizer.encode(queries).to(self.device)
        prefix = self.layout.sequence(*[self._encode_rows(d, b) for d in demos], q)
        ids = self._generate(prefix.repeat_interleave(n_samples, dim=0), b * n_samples, n_frames, None, sampling, seed)
        return self.decode(ids).reshape(b, n_samples, n_frames, self.frame_size, self.frame_size, 3)

    @torch.no_grad()
    def rollout(self, context: np.ndarray, actions, sampling: SamplingConfig = SamplingConfig(), seed: int = 0,
                past_actions=None, pixels: bool = True) -> np.ndarray | torch.Tensor:
        """Predict ``H`` frames for each of ``N`` action sequences ``actions [N, H, ...]`` from ``context``
        frames ``[C, H, W, 3]``; ``past_actions [C - 1, ...]`` are the actions between the context frames
        (optional). ``sampling.guidance`` w != 1 samples with classifier-free guidance on the actions (the model
        was trained with action dropout): ``uncond + w * (cond - uncond)``, at twice the compute.
        Returns uint8 ``[N, H, H_img, W_img, 3]`` (``pixels=False``: the sampled ids, for :meth:`decode`)."""
        if self.actions.dim == 0:
            raise ValueError("this world model was trained without actions; use imagine()")
        enc = self.actions.encode(actions)
        if enc.ndim != 3:
            raise ValueError(f"actions must be [N, H, ...] for {self.actions.describe()}, got shape {np.shape(actions)}")
        n, horizon = enc.shape[:2]
        ctx = self._encode(context)
        prefix = self.layout.sequence(ctx)
        c = ctx.shape[1]
        total = prefix.shape[1] + horizon * self.layout.tokens_per_frame
        feats = self.layout.action_features(enc, total, first_frame=c - 1)
        if past_actions is not None and c > 1:
            past = self.actions.encode(past_actions)[None].expand(n, -1, -1)
            feats = feats + self.layout.action_features(past, total, first_frame=0)
        if sampling.guided:
            feats = torch.cat([feats, torch.zeros_like(feats)])
        ids = self._generate(prefix, 2 * n if sampling.guided else n, horizon, feats.to(self.device), sampling, seed)
        return self.decode(ids) if pixels else ids

    @torch.no_grad()
    def features(self, clips: np.ndarray, first_frame: int = 0) -> np.ndarray:
        """The decoder's last-layer hidden states of clips ``[B, T, H, W, 3]`` read without actions,
        averaged over the positions of frames ``first_frame ..`` : ``[B, dim]`` (P-Acc probes read these)."""
        clips = np.asarray(clips)
        if clips.ndim != 5 or not 0 <= first_frame < clips.shape[1]:
            raise ValueError(f"clips must be uint8 [B, T, H, W, 3] with T > first_frame={first_frame}, "
                             f"got shape {clips.shape}")
        seq = self.layout.sequence(self.tokenizer.encode(clips).to(self.device))
        hidden = self.decoder.hidden(seq)[:, self.layout.length(first_frame):]
        return hidden.mean(dim=1).float().cpu().numpy()

    @torch.no_grad()
    def reconstruction_psnr(self, frames: np.ndarray) -> float:
        """PSNR (dB) of uint8 frames ``[T, H, W, 3]`` through the tokenizer and back: far lower for frames
        unlike those it was trained on (a Crafter clip through the desk tokenizer: 6-7 dB; desk clips: 22-28)."""
        frames = np.array(frames)  # a writable copy (env observations may be read-only)
        return psnr(frames, self.tokenizer.decode(self._encode(frames)).cpu().numpy()[0])

    # -- internals ----------------------------------------------------------------------------
    def _encode_rows(self, frames: np.ndarray, b: int) -> torch.Tensor:
        """A clip shared by ``b`` rows (``[T, H, W, 3]``) or one per row (``[b, T, H, W, 3]``) -> ids ``[b, T, h, w]``."""
        frames = np.asarray(frames)
        if frames.ndim == 5:
            if len(frames) != b:
                raise ValueError(f"per-row demos hold {len(frames)} clips for {b} queries")
            return self.tokenizer.encode(frames).to(self.device)
        return self._encode(frames).expand(b, -1, -1, -1)

    def _encode(self, frames: np.ndarray) -> torch.Tensor:
        """uint8 ``[T, H, W, 3]`` (any size: the tokenizer resizes with a warning) -> ids ``[1, T, h, w]``."""
        frames = np.asarray(frames)
        if frames.ndim != 4 or frames.shape[-1] != 3:
            raise ValueError(f"frames must be uint8 [T, H, W, 3], got shape {frames.shape}")
        return self.tokenizer.encode(frames[None]).to(self.device)

    def decode(self, ids: torch.Tensor) -> np.ndarray:
        """Pixels uint8 ``[N, T, H, W, 3]`` of sampled ids ``[N, T * tokens per frame]``."""
        frames = self.layout.frames_of(ids, self.tokenizer.grid)
        return self.tokenizer.decode(frames).cpu().numpy()

    def next_frames(self, context: torch.Tensor, actions: torch.Tensor | None,
                    sampling: SamplingConfig = SamplingConfig(), seed: int = 0) -> torch.Tensor:
        """One frame per row from per-row context ids ``[N, C, h, w]`` and encoded actions ``[N, A]``
        taken on the last context frame; returns ids ``[N, h, w]`` (the imagination env's step)."""
        n, c = context.shape[:2]
        prefix = self.layout.sequence(context.to(self.device))
        feats = None
        if actions is not None:
            total = prefix.shape[1] + self.layout.tokens_per_frame
            feats = self.layout.action_features(actions[:, None].to(self.device), total, first_frame=c - 1)
        ids = self._generate(prefix, n, 1, feats, sampling, seed)
        return ids.reshape(n, *self.tokenizer.grid)

    def _generate(self, prefix: torch.Tensor, n: int, n_frames: int, feats: torch.Tensor | None,
                  sampling: SamplingConfig, seed: int) -> torch.Tensor:
        """Sample ``n_frames`` frames of codebook ids for ``n`` rows after ``prefix [1 or n, P]``; a
        one-row prefix is shared: its KV cache is computed once and broadcast to the ``n`` rows. Guidance
        applies where ``feats`` holds each row's actions and then the same rows without (``rollout``)."""
        n_new = n_frames * self.layout.tokens_per_frame
        limit = self.decoder.config.max_seq_len
        if prefix.shape[1] + n_new - 1 > limit:
            raise ValueError(f"a prompt of {prefix.shape[1]} tokens plus {n_new} to generate exceeds the model's "
                             f"context window of {limit} tokens ({self.layout.tokens_per_frame} per frame)")
        g = torch.Generator(device=self.device).manual_seed(seed)
        kw = dict(actions=feats, temperature=sampling.temperature, top_k=sampling.top_k, generator=g,
                  vocab=self.layout.codebook_size)
        prefix = prefix.to(self.device)
        if prefix.shape[0] == 1:
            guidance = sampling.guidance if sampling.guided and feats is not None else None
            return generate_shared_prefix(self.decoder, prefix, n, n_new, guidance=guidance, **kw)
        return generate(self.decoder, prefix, n_new, **kw)
