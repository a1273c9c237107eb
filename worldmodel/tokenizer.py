"""The frame tokenizer: a ``diffusers.VQModel`` that turns uint8 frames into codebook ids and back.

A saved tokenizer is a diffusers VQModel folder (``config.json`` + ``diffusion_pytorch_model.safetensors``)
plus ``vidit_tokenizer.json`` (the frame size). A folder in the amused-256 layout, without that file,
loads unchanged: pixels enter as [0, 1] floats and 256x256 frames become 16x16 ids.
"""
from __future__ import annotations

import hashlib
import json
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from diffusers import VQModel
from safetensors import SafetensorError

from envs.video import resize_center_crop
from vidit.files import write_json

VIDIT_FILE = "vidit_tokenizer.json"
VERSION = 1
AMUSED_FRAME_SIZE = 256

# Small VQ-GANs for 64x64 env frames; each block after the first halves the resolution.
PRESETS: dict[str, dict[str, Any]] = {
    "tiny": dict(block_out_channels=(4, 4, 8, 8, 8), layers_per_block=1, latent_channels=4, num_vq_embeddings=32,
                 norm_num_groups=4),
    "f8": dict(block_out_channels=(16, 32, 64, 64), layers_per_block=1, latent_channels=16, num_vq_embeddings=1024,
               norm_num_groups=8),
    "f16": dict(block_out_channels=(16, 32, 64, 64, 128), layers_per_block=1, latent_channels=16,
                num_vq_embeddings=1024, norm_num_groups=8),
}


def _to_tensor(frames: np.ndarray | torch.Tensor) -> torch.Tensor:
    if isinstance(frames, np.ndarray):
        frames = torch.from_numpy(np.ascontiguousarray(frames))
    return frames


class VQTokenizer:
    """Frames uint8 ``[B, T, H, W, 3]`` <-> ids int64 ``[B, T, h, w]`` through a diffusers ``VQModel``."""

    def __init__(self, model: VQModel, frame_size: int, batch_size: int = 64):
        self.model = model.eval()
        self.batch_size = batch_size
        n_down = len(model.config.block_out_channels) - 1
        if frame_size % 2 ** n_down:
            raise ValueError(f"frame size {frame_size} is not a multiple of the model's downsampling {2 ** n_down}")
        self._frame_size = frame_size
        self._grid = (frame_size // 2 ** n_down,) * 2
        self._warned: set[tuple[int, int]] = set()

    # ---------------------------------------------------------------- properties
    @property
    def codebook_size(self) -> int:
        return int(self.model.config.num_vq_embeddings)

    @property
    def grid(self) -> tuple[int, int]:
        """(h, w) of one frame's ids."""
        return self._grid

    @property
    def tokens_per_frame(self) -> int:
        return self._grid[0] * self._grid[1]

    @property
    def frame_size(self) -> int:
        """Side of the square frames the model encodes; other sizes are resized + center-cropped."""
        return self._frame_size

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def to(self, device: str | torch.device) -> VQTokenizer:
        self.model.to(device)
        return self

    @property
    def decode_dtype(self) -> torch.dtype:
        """The dtype frames are decoded in (encoding always runs in float32, so ids do not depend on it)."""
        return self.model.decoder.conv_in.weight.dtype

    def set_decode_dtype(self, dtype: torch.dtype) -> VQTokenizer:
        """Decode pixels in ``dtype`` (the decoder's weights are cast, so going back to float32 does not
        restore them): bfloat16 with channels-last convs is ~4x faster where the CPU has AMX/AVX512-BF16,
        within a few levels of 255 of float32."""
        layout = torch.channels_last if dtype != torch.float32 else torch.contiguous_format
        for part in (self.model.post_quant_conv, self.model.decoder):
            part.to(dtype=dtype, memory_format=layout)
        return self

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.model.parameters())

    def fingerprint(self) -> str:
        """A short hash of the config and weights, to tie token shards to the tokenizer that made them."""
        config = {k: v for k, v in self.model.config.items() if not k.startswith("_")}
        h = hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode())
        h.update(f"frame_size={self.frame_size}".encode())
        for name, tensor in sorted(self.model.state_dict().items()):
            h.update(name.encode())
            h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
        return h.hexdigest()[:16]

    # ---------------------------------------------------------------- model pieces
    def pixels(self, frames: np.ndarray | torch.Tensor) -> torch.Tensor:
        """uint8 ``[N, H, W, 3]`` frames of this tokenizer's size -> float ``[N, 3, H, W]`` in [0, 1]."""
        return _to_tensor(frames).to(self.device).permute(0, 3, 1, 2).float().div(255.0)

    def quantize(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Pixels ``[N, 3, H, W]`` in [0, 1] -> (quantized latents, quantizer loss, ids ``[N, h, w]``, latents)."""
        z = self.model.encode(x).latents
        z_q, loss, (_, _, ids) = self.model.quantize(z)
        return z_q, loss, ids.reshape(z.shape[0], *z.shape[2:]), z

    def reconstruct(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """One quantized pass, as ``VQModel.forward``: (reconstruction, quantizer loss, ids, latents)."""
        z_q, loss, ids, z = self.quantize(x)
        return self._decode_latents(z_q), loss, ids, z

    def _decode_latents(self, z_q: torch.Tensor) -> torch.Tensor:
        """Quantized latents -> pixels ``[N, 3, H, W]`` (unclamped), as ``VQModel.decode`` after its lookup."""
        m = self.model
        return m.decoder(m.post_quant_conv(z_q), z_q if m.config.norm_type == "spatial" else None)

    def _decode_flat(self, ids: torch.Tensor) -> torch.Tensor:
        """ids ``[N, h, w]`` -> pixels ``[N, 3, H, W]`` (unclamped)."""
        shape = (ids.shape[0], *ids.shape[1:], self.model.quantize.vq_embed_dim)
        z_q = self.model.quantize.get_codebook_entry(ids.reshape(-1), shape)
        return self._decode_latents(z_q.to(self.decode_dtype)).float()

    # ---------------------------------------------------------------- frames <-> ids
    def _fit(self, frames: np.ndarray | torch.Tensor) -> np.ndarray | torch.Tensor:
        """Resize + center-crop ``[N, H, W, 3]`` frames of another size, warning once per size."""
        h, w = frames.shape[1:3]
        if (h, w) == (self.frame_size, self.frame_size):
            return frames
        if (h, w) not in self._warned:
            self._warned.add((h, w))
            warnings.warn(f"frames are {h}x{w}; the tokenizer encodes {self.frame_size}x{self.frame_size}: "
                          "resizing and center-cropping", stacklevel=3)
        array = frames.cpu().numpy() if isinstance(frames, torch.Tensor) else frames
        return resize_center_crop(array, self.frame_size)

    @torch.no_grad()
    def encode(self, frames: np.ndarray | torch.Tensor, batch_size: int | None = None) -> torch.Tensor:
        """uint8 frames ``[B, T, H, W, 3]`` (numpy or torch) -> int64 ids ``[B, T, h, w]`` on the model's device."""
        if frames.ndim != 5 or frames.shape[-1] != 3:
            raise ValueError(f"frames must be [B, T, H, W, 3], got {list(frames.shape)}")
        if frames.dtype not in (np.uint8, torch.uint8):
            raise ValueError(f"frames must be uint8, got {frames.dtype}")
        b, t = frames.shape[:2]
        flat = self._fit(frames.reshape(b * t, *frames.shape[2:]))
        bs = batch_size or self.batch_size
        ids = [self.quantize(self.pixels(flat[i:i + bs]))[2] for i in range(0, b * t, bs)]
        return torch.cat(ids).reshape(b, t, *self.grid)

    @torch.no_grad()
    def decode(self, ids: torch.Tensor | np.ndarray, batch_size: int | None = None) -> torch.Tensor:
        """ids ``[B, T, h, w]`` -> uint8 frames ``[B, T, H, W, 3]`` on the model's device."""
        ids = _to_tensor(ids).to(self.device, torch.long)
        if ids.ndim != 4 or tuple(ids.shape[2:]) != self.grid:
            raise ValueError(f"ids must be [B, T, {self.grid[0]}, {self.grid[1]}], got {list(ids.shape)}")
        b, t = ids.shape[:2]
        flat = ids.reshape(b * t, *self.grid)
        bs = batch_size or self.batch_size
        pixels = torch.cat([self._decode_flat(flat[i:i + bs]) for i in range(0, b * t, bs)])
        frames = pixels.clamp(0, 1).mul(255).round().to(torch.uint8).permute(0, 2, 3, 1)
        return frames.reshape(b, t, *frames.shape[1:])

    # ---------------------------------------------------------------- construction and storage
    @classmethod
    def from_preset(cls, name: str, frame_size: int = 64) -> VQTokenizer:
        """A freshly initialised tokenizer of preset ``name`` (see :data:`PRESETS`) for square frames."""
        if name not in PRESETS:
            raise ValueError(f"unknown tokenizer preset {name!r}; choose from {', '.join(PRESETS)}")
        spec = PRESETS[name]
        n = len(spec["block_out_channels"])
        model = VQModel(down_block_types=("DownEncoderBlock2D",) * n, up_block_types=("UpDecoderBlock2D",) * n,
                        sample_size=frame_size, mid_block_add_attention=False, lookup_from_codebook=True, **spec)
        return cls(model, frame_size)

    def save_pretrained(self, directory: str | os.PathLike) -> Path:
        """Write the diffusers VQModel folder plus ``vidit_tokenizer.json``."""
        directory = Path(directory)
        self.model.save_pretrained(directory)
        write_json(directory / VIDIT_FILE, {"version": VERSION, "frame_size": self.frame_size})
        return directory

    @classmethod
    def from_pretrained(cls, directory: str | os.PathLike, frame_size: int | None = None) -> VQTokenizer:
        """Load a saved tokenizer, or a plain amused-layout VQ folder (frame size 256 unless given)."""
        directory = Path(directory)
        if not (directory / "config.json").is_file():
            raise FileNotFoundError(f"{directory}: not a tokenizer folder (no config.json of a diffusers VQModel)")
        saved = None
        if (directory / VIDIT_FILE).is_file():
            meta = json.loads((directory / VIDIT_FILE).read_text())
            if meta.get("version", VERSION) > VERSION:
                raise ValueError(f"{directory / VIDIT_FILE}: version {meta['version']} is newer than this vidit "
                                 f"reads ({VERSION})")
            unknown = sorted(set(meta) - {"version", "frame_size"})
            if unknown:
                warnings.warn(f"{directory / VIDIT_FILE}: ignoring unknown keys {unknown}", stacklevel=2)
            saved = meta.get("frame_size")
        if frame_size is not None and saved is not None and frame_size != saved:
            raise ValueError(f"{directory}: tokenizer was trained on {saved}x{saved} frames, "
                             f"not {frame_size}x{frame_size}")
        try:
            model = VQModel.from_pretrained(directory, low_cpu_mem_usage=False)
        except (OSError, ValueError, RuntimeError, SafetensorError) as e:  # truncated or corrupt files
            raise ValueError(f"{directory}: unreadable tokenizer ({' '.join(str(e).split())[:300]})") from None
        return cls(model, frame_size or saved or AMUSED_FRAME_SIZE)
