"""Where vidit derives seeds: a child seed from a parent seed and integer keys.

``derive(seed, step)`` is a pure function (numpy's ``SeedSequence`` hashes the keys), so a run drawn from
``derive(cfg.seed, step)`` resumes at ``step`` to the same result, and nearby parents (seeds 1, 2, ...) give
unrelated children, which sums and products like ``seed * 100_003 + step`` do not guarantee. The trainers
use it. :func:`call_seed` is the agents' per-call stream (one imagination or rollout call of an episode),
kept as it was so that every recorded benchmark episode replays draw for draw. Episode seeds (``--seed + i``,
VP²'s ``1000 * seed + instance``) are a protocol's names for episodes, not derived randomness, and stay as
their docs say.
"""
from __future__ import annotations

import numpy as np


def derive(seed: int, *keys: int) -> int:
    """A 63-bit seed from ``seed`` and ``keys`` (non-negative ints); fits ``torch.manual_seed``."""
    return int(np.random.SeedSequence([int(seed), *map(int, keys)]).generate_state(1, np.uint64)[0] >> 1)


def call_seed(episode_seed: int, call: int) -> int:
    """The seed of an agent's ``call``-th world-model call in the episode of ``episode_seed``."""
    return episode_seed * 100_003 + call


def rng(seed: int, *keys: int) -> np.random.Generator:
    """A numpy generator for ``(seed, *keys)``."""
    return np.random.default_rng(derive(seed, *keys))


def generator(seed: int, *keys: int):
    """A ``torch.Generator`` for ``(seed, *keys)``."""
    import torch  # here, so that ``vidit`` imports torch only where a model or trainer needs it

    return torch.Generator().manual_seed(derive(seed, *keys))
