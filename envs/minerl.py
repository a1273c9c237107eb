"""``vidit/MineRLTreechop-v0``: MineRL 0.4.4's ``MineRLTreechop-v0`` behind a flat, discrete action vector.

- MineRL's own spaces (``treechop_observation_space``, ``treechop_action_space``) are mirrored here as
  gymnasium spaces: ``pov`` is 64x64x3 uint8; the action is 8 ``Discrete(2)`` buttons plus ``camera``,
  a float32 ``[pitch, yaw]`` delta in degrees within [-180, 180].
- The adapter speaks :data:`FLAT_ACTION_SPACE`, what an IDM predicts: the 8 buttons (in
  :data:`MINERL_BUTTONS` order), then the pitch and yaw bins of VPT's mu-law camera quantisation
  (``camera_maxval=10``, ``mu=10``, ``binsize=2``: 11 bins per axis, bin 5 is no turn). Camera deltas
  beyond +-10 degrees fall into the end bins.
- Observation: the ``pov`` image. Reward: MineRL's, +1 per log collected; ``info["success"]`` is True
  once any log has been collected this episode.
- MineRL needs Java 8 and a networked build (``pip install minerl==0.4.4``); without it, making the env
  raises a one-line ``ImportError`` that points at ``vidit/Crafter-v0``.
"""
from __future__ import annotations

import gymnasium as gym
import numpy as np
from gymnasium import spaces

MINERL_BUTTONS = ("attack", "back", "forward", "jump", "left", "right", "sneak", "sprint")
POV_SHAPE = (64, 64, 3)
CAMERA_LIMIT = 180.0  # MineRL's camera Box bound, degrees

CAMERA_MAXVAL = 10.0
CAMERA_MU = 10.0
CAMERA_BINSIZE = 2.0
N_CAMERA_BINS = int(2 * CAMERA_MAXVAL / CAMERA_BINSIZE) + 1  # 11
CAMERA_CENTER_BIN = N_CAMERA_BINS // 2  # 5

FLAT_ACTION_SPACE = spaces.MultiDiscrete([2] * len(MINERL_BUTTONS) + [N_CAMERA_BINS, N_CAMERA_BINS])
_FLAT_EXPECTED = (f"expected {len(FLAT_ACTION_SPACE.nvec)} ints: buttons {', '.join(MINERL_BUTTONS)} in {{0, 1}}, "
                  f"then camera pitch and yaw bins in [0, {N_CAMERA_BINS - 1}]")

NOT_INSTALLED = ("vidit/MineRLTreechop-v0 needs MineRL, which is not installed ({reason}); it needs Java 8 and a "
                 "networked build (pip install minerl==0.4.4); the equivalent Crafter env is vidit/Crafter-v0 "
                 "(--env crafter)")


def treechop_observation_space() -> spaces.Dict:
    """MineRL Treechop's observation space: ``Dict(pov=Box(0, 255, (64, 64, 3), uint8))``."""
    return spaces.Dict({"pov": spaces.Box(0, 255, POV_SHAPE, np.uint8)})


def treechop_action_space() -> spaces.Dict:
    """MineRL Treechop's action space: 8 ``Discrete(2)`` buttons and ``camera`` Box(-180, 180, (2,), float32)."""
    return spaces.Dict({**{b: spaces.Discrete(2) for b in MINERL_BUTTONS},
                        "camera": spaces.Box(-CAMERA_LIMIT, CAMERA_LIMIT, (2,), np.float32)})


def quantize_camera(deg) -> np.ndarray:
    """Camera degrees to mu-law bins in ``[0, 10]`` (int64, same shape); values beyond +-10 are clipped."""
    x = np.clip(np.asarray(deg, dtype=np.float64), -CAMERA_MAXVAL, CAMERA_MAXVAL) / CAMERA_MAXVAL
    encoded = np.sign(x) * np.log1p(CAMERA_MU * np.abs(x)) / np.log1p(CAMERA_MU)  # in [-1, 1]
    return np.rint((encoded + 1.0) * CAMERA_MAXVAL / CAMERA_BINSIZE).astype(np.int64)


def dequantize_camera(bins) -> np.ndarray:
    """Mu-law bins to the camera degrees at their centers (float32, same shape); bin 5 is exactly 0."""
    encoded = np.asarray(bins, dtype=np.float64) * CAMERA_BINSIZE / CAMERA_MAXVAL - 1.0
    deg = np.sign(encoded) * np.expm1(np.abs(encoded) * np.log1p(CAMERA_MU)) / CAMERA_MU * CAMERA_MAXVAL
    return deg.astype(np.float32)


def check_flat_action(action) -> np.ndarray:
    """``action`` as int64 of shape (10,); ``ValueError`` naming the expected layout if it is not valid."""
    try:
        a = np.asarray(action)
    except (TypeError, ValueError):
        raise ValueError(f"action {action!r} is not numeric; {_FLAT_EXPECTED}") from None
    if a.dtype.kind not in "iuf":
        raise ValueError(f"action {action!r} is not numeric; {_FLAT_EXPECTED}")
    if a.shape != FLAT_ACTION_SPACE.shape:
        raise ValueError(f"action has shape {a.shape}; {_FLAT_EXPECTED}")
    if not np.all(np.isfinite(a)):
        raise ValueError(f"action {a.tolist()} has NaN or inf; {_FLAT_EXPECTED}")
    if np.any(a != np.round(a)) or np.any(a < 0) or np.any(a >= FLAT_ACTION_SPACE.nvec):
        raise ValueError(f"action {a.tolist()} is out of range; {_FLAT_EXPECTED}")
    return a.astype(np.int64)


def to_flat(action: dict) -> np.ndarray:
    """A MineRL action dict to the flat int64 vector: 8 buttons, then pitch and yaw bins."""
    buttons = np.array([action[b] for b in MINERL_BUTTONS]).astype(np.int64)
    if not np.all((buttons == 0) | (buttons == 1)):
        raise ValueError(f"buttons {dict(zip(MINERL_BUTTONS, buttons.tolist()))} must each be 0 or 1")
    camera = np.asarray(action["camera"], dtype=np.float64)
    if camera.shape != (2,) or not np.all(np.isfinite(camera)):
        raise ValueError(f"camera {action['camera']!r} must be 2 finite degrees [pitch, yaw]")
    return np.concatenate([buttons, quantize_camera(camera)])


def from_flat(vec) -> dict:
    """The flat vector to a MineRL action dict (buttons as ints, camera float32 (2,) at bin centers)."""
    v = check_flat_action(vec)
    action: dict = {b: int(v[i]) for i, b in enumerate(MINERL_BUTTONS)}
    action["camera"] = dequantize_camera(v[len(MINERL_BUTTONS):])
    return action


def _make_minerl_env():
    """``gym.make("MineRLTreechop-v0")``, or the one-line ``ImportError`` where MineRL is missing."""
    try:
        import minerl  # noqa: F401 - registers the MineRL envs with gym
        import gym
    except ImportError as e:
        raise ImportError(NOT_INSTALLED.format(reason=" ".join(str(e).split()))) from None
    return gym.make("MineRLTreechop-v0")


class MineRLTreechop(gym.Env):
    """MineRL Treechop with the pov as observation and :data:`FLAT_ACTION_SPACE` as action; see the module docstring.

    ``inner`` replaces the MineRL env with any object of its old-gym API (``reset() -> obs``,
    ``step(a) -> obs, reward, done, info``, optional ``seed``).
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 20}

    def __init__(self, render_mode: str | None = "rgb_array", inner=None):
        self._inner = _make_minerl_env() if inner is None else inner
        self.render_mode = render_mode
        self.observation_space = treechop_observation_space()["pov"]
        self.action_space = FLAT_ACTION_SPACE
        self._pov: np.ndarray | None = None
        self._success = False

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        if seed is not None and hasattr(self._inner, "seed"):
            self._inner.seed(seed)
        self._pov = np.asarray(self._inner.reset()["pov"], dtype=np.uint8)
        self._success = False
        return self._pov, {"success": False}

    def step(self, action):
        obs, reward, done, info = self._inner.step(from_flat(action))
        self._pov = np.asarray(obs["pov"], dtype=np.uint8)
        self._success = self._success or bool(reward > 0)
        return self._pov, float(reward), bool(done), False, {**info, "success": self._success}

    def render(self) -> np.ndarray | None:
        return self._pov if self.render_mode == "rgb_array" else None

    def close(self):
        self._inner.close()
