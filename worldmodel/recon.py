"""Tokenizer reconstructions of real frames: what the world model's imagined frames look like.

Models that must read imagined frames (the IDM, the success classifier) train on them as augmentation.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from tqdm import tqdm

from vidit.files import atomic_path
from worldmodel.simulator import resolve_model
from worldmodel.tokenizer import VQTokenizer


def reconstructions(tok: VQTokenizer, episodes: list[np.ndarray], cache: Path) -> list[np.ndarray]:
    """Every frame of every episode through ``tok`` (encode + decode), cached in ``cache`` (an .npz)
    keyed by the tokenizer and the episode lengths."""
    sizes = [len(f) for f in episodes]
    if cache.is_file():
        saved = np.load(cache)
        if str(saved["fingerprint"]) == tok.fingerprint() and saved["sizes"].tolist() == sizes:
            return np.split(saved["frames"], np.cumsum(sizes)[:-1])
    flat = np.concatenate(episodes)
    out = np.empty_like(flat)
    for i in tqdm(range(0, len(flat), 256), desc="reconstruct", unit="batch", leave=False):
        out[i:i + 256] = tok.decode(tok.encode(flat[i:i + 256][:, None]))[:, 0].numpy()
    with atomic_path(cache) as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, frames=out, sizes=np.array(sizes), fingerprint=tok.fingerprint())
    return np.split(out, np.cumsum(sizes)[:-1])


def load_tokenizer(path: Path) -> VQTokenizer:
    """A tokenizer folder, or the ``tokenizer/`` of a world-model folder or shipped name."""
    if path.is_dir() and not (path / "tokenizer").is_dir():
        return VQTokenizer.from_pretrained(path)
    return VQTokenizer.from_pretrained(resolve_model(path) / "tokenizer")
