"""Validation of actions at the env boundary: bad actions fail loudly with the expected shape and range."""
from __future__ import annotations

import numpy as np
from gymnasium import spaces


def check_box_action(action, space: spaces.Box) -> np.ndarray:
    """``action`` as float32 of ``space``'s shape; ``ValueError`` if the shape is wrong, NaN or out of range."""
    expected = f"expected a float array of shape {space.shape} in [{space.low.min():g}, {space.high.max():g}]"
    try:
        a = np.asarray(action, dtype=np.float32)
    except (TypeError, ValueError):
        raise ValueError(f"action {action!r} is not numeric; {expected}") from None
    if a.shape != space.shape:
        raise ValueError(f"action has shape {a.shape}; {expected}")
    if not np.all(np.isfinite(a)):
        raise ValueError(f"action {a.tolist()} has NaN or inf; {expected}")
    if np.any(a < space.low - 1e-6) or np.any(a > space.high + 1e-6):
        raise ValueError(f"action {np.round(a, 4).tolist()} is out of range; {expected}")
    return np.clip(a, space.low, space.high)


def check_discrete_action(action, space: spaces.Discrete) -> int:
    """``action`` as an int in ``[0, n)``; ``ValueError`` otherwise."""
    a = np.asarray(action)
    if a.size != 1 or not np.issubdtype(a.dtype, np.integer) or not 0 <= int(a) < space.n:
        raise ValueError(f"action {action!r} is invalid; expected one int in [0, {space.n})")
    return int(a)


def space_json(space) -> dict:
    """A gymnasium action space as the JSON datasets and models record (``box``, ``discrete``, ``multidiscrete``)."""
    if hasattr(space, "n"):
        return {"type": "discrete", "n": int(space.n)}
    if hasattr(space, "nvec"):
        return {"type": "multidiscrete", "nvec": np.asarray(space.nvec).tolist()}
    return {"type": "box", "shape": list(space.shape), "low": np.asarray(space.low).tolist(),
            "high": np.asarray(space.high).tolist()}
