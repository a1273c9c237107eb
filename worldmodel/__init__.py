"""VidIT world model: VQ tokenizer, LLaMA-style decoder, trainers, sampler and video simulator.

Public entry point: ``worldmodel.VideoSimulator.from_pretrained(name_or_dir)``. Importing
``worldmodel.imagination`` registers ``vidit/Imagination-v0``: ``gymnasium.make("vidit/Imagination-v0",
model="robodesk-push-red")`` steps inside a world model. The package itself imports neither gymnasium
nor ``envs`` (the decoder and sampler stand alone).
"""
from __future__ import annotations

__all__ = ["VideoSimulator"]


def __getattr__(name: str):
    if name == "VideoSimulator":  # imported lazily: diffusers is slow to import
        from worldmodel.simulator import VideoSimulator
        return VideoSimulator
    raise AttributeError(f"module 'worldmodel' has no attribute {name!r}")
