"""VidIT world model: VQ tokenizer, LLaMA-style decoder, trainers, sampler and video simulator.

Public entry point: ``worldmodel.VideoSimulator.from_pretrained(name_or_dir)``.
"""
from __future__ import annotations

__all__ = ["VideoSimulator"]


def __getattr__(name: str):
    if name == "VideoSimulator":  # imported lazily: diffusers is slow to import
        from worldmodel.simulator import VideoSimulator
        return VideoSimulator
    raise AttributeError(f"module 'worldmodel' has no attribute {name!r}")
