"""The one place that decides how frames, clips and actions become a flat token sequence.

Both the trainer and the sampler call :class:`Layout`; nothing else builds sequences.

- Vocabulary: ids ``0 .. K-1`` are codebook entries, ``K`` is ``[bos]``, ``K + 1`` is ``[eos]``.
- A training clip: ``[bos] f_0 f_1 ... f_{T-1} [eos]``, each frame its ``n = h * w`` ids in row-major
  order, with no separator between frames (VidIT).
- An in-context prompt: ``[bos] demo_1 ... demo_k query``; the model continues the query. Training
  with ``--pack same-task`` uses the same layout: ``[bos] demo query [eos]``.
- Actions (optional, as iVideoGPT): the action taken on frame ``t`` is embedded at the position whose
  output predicts frame ``t + 1``'s first token, i.e. the last token of frame ``t``
  (``action_span="token"``), or at every position whose output predicts a token of frame ``t + 1``
  (``"frame"``: that position and the next ``n - 1``, so no token has to fetch the action through
  attention). An embedded position gets the feature ``[action, 1]``, others zeros; the trailing 1 marks
  "an action is given", so a real all-zero action differs from no action, and action-free sequences
  are plain VidIT.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch

ActionSpan = Literal["token", "frame"]


@dataclass(frozen=True)
class Layout:
    codebook_size: int
    tokens_per_frame: int
    action_span: ActionSpan = "token"

    def __post_init__(self):
        if self.action_span not in ("token", "frame"):
            raise ValueError(f"action_span must be 'token' or 'frame', got {self.action_span!r}")

    @property
    def bos(self) -> int:
        return self.codebook_size

    @property
    def eos(self) -> int:
        return self.codebook_size + 1

    @property
    def vocab_size(self) -> int:
        return self.codebook_size + 2

    def length(self, n_frames: int, eos: bool = False) -> int:
        """Sequence length of ``[bos]`` + ``n_frames`` frames (+ ``[eos]``)."""
        return 1 + n_frames * self.tokens_per_frame + int(eos)

    def sequence(self, *clips: torch.Tensor, eos: bool = False) -> torch.Tensor:
        """``[bos]`` + the frames of every clip in order (+ ``[eos]``).

        Each clip: ids ``[B, T_i, h, w]`` or ``[B, T_i, n]``. Returns ``[B, L]`` int64.
        """
        flat = [c.reshape(c.shape[0], -1).long() for c in clips]
        for c in clips:
            if c.shape[2:].numel() != self.tokens_per_frame:
                raise ValueError(f"frames have {c.shape[2:].numel()} ids; this model uses {self.tokens_per_frame} per frame")
        b = flat[0].shape[0]
        parts = [torch.full((b, 1), self.bos, dtype=torch.long, device=flat[0].device), *flat]
        if eos:
            parts.append(torch.full((b, 1), self.eos, dtype=torch.long, device=flat[0].device))
        return torch.cat(parts, dim=1)

    def action_position(self, frame: int) -> int:
        """Sequence position where the action taken on frame ``frame`` (0-based, after [bos]) is embedded."""
        return (frame + 1) * self.tokens_per_frame

    def action_features(self, actions: torch.Tensor, length: int, first_frame: int = 0) -> torch.Tensor:
        """Per-position action features ``[B, length, A + 1]`` for ``actions [B, H, A]``.

        ``actions[:, i]`` is the action taken on frame ``first_frame + i`` of the sequence.
        """
        b, h, a = actions.shape
        feats = actions.new_zeros(b, length, a + 1)
        span = self.tokens_per_frame if self.action_span == "frame" else 1
        for i in range(h):
            pos = self.action_position(first_frame + i)
            if pos + span > length:
                raise ValueError(f"action {i} at positions {pos}..{pos + span - 1} lies past the sequence length {length}")
            feats[:, pos:pos + span, :a] = actions[:, i, None]
            feats[:, pos:pos + span, a] = 1.0
        return feats

    def clip_action_features(self, actions: list[torch.Tensor], frames: list[int], length: int) -> torch.Tensor:
        """Action features ``[B, length, A + 1]`` of a :meth:`sequence` of clips: ``actions[i] [B, frames[i] - 1, A]``
        are the actions inside clip ``i``; none joins two clips (the cut from a demo to the query)."""
        first, out = 0, None
        for act, n in zip(actions, frames):
            if act.shape[1] != n - 1:
                raise ValueError(f"a clip of {n} frames has {n - 1} actions, got {act.shape[1]}")
            if n > 1:
                feats = self.action_features(act, length, first_frame=first)
                out = feats if out is None else out + feats
            first += n
        return out if out is not None else actions[0].new_zeros(actions[0].shape[0], length, actions[0].shape[2] + 1)

    def frames_of(self, tokens: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
        """Generated ids ``[B, T * n]`` (whole frames, no specials) back to ``[B, T, h, w]``."""
        b, length = tokens.shape
        if length % self.tokens_per_frame:
            raise ValueError(f"{length} ids are not whole frames of {self.tokens_per_frame}")
        return tokens.reshape(b, length // self.tokens_per_frame, *grid)
