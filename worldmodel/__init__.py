"""VidIT world model: VQ tokenizer, LLaMA-style decoder, trainers, sampler and video simulator.

Public entry point: ``worldmodel.VideoSimulator.from_pretrained(name_or_dir)``. Importing the package
registers ``vidit/Imagination-v0``: ``gymnasium.make("vidit/Imagination-v0", model="robodesk-push-red")``
steps inside a world model.
"""
from __future__ import annotations

import gymnasium as gym

if "vidit/Imagination-v0" not in gym.registry:
    gym.register(id="vidit/Imagination-v0", entry_point="worldmodel.imagination:make_imagination_env",
                 max_episode_steps=15, nondeterministic=False)

__all__ = ["VideoSimulator"]


def __getattr__(name: str):
    if name == "VideoSimulator":  # imported lazily: diffusers is slow to import
        from worldmodel.simulator import VideoSimulator
        return VideoSimulator
    raise AttributeError(f"module 'worldmodel' has no attribute {name!r}")
