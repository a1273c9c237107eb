"""``vidit/MineRLTreechop-v0`` without MineRL: mirrored spaces, camera bins, flat actions, and the adapter
around a stand-in env with MineRL's old-gym API."""
from __future__ import annotations

import itertools
import sys
import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import envs
from envs.minerl import (CAMERA_CENTER_BIN, FLAT_ACTION_SPACE, MINERL_BUTTONS, MineRLTreechop, dequantize_camera,
                         from_flat, quantize_camera, to_flat, treechop_action_space, treechop_observation_space)

LOG_STEP = 3  # the stand-in pays reward 1 on this step


class StandInTreechop:
    """Old-gym stand-in for ``gym.make("MineRLTreechop-v0")``: deterministic povs, a log on step ``LOG_STEP``."""

    def __init__(self):
        self.observation_space = treechop_observation_space()
        self.action_space = treechop_action_space()
        self._seed = 0
        self.actions: list[dict] = []

    def seed(self, seed: int) -> None:
        self._seed = seed

    def reset(self) -> dict:
        self._t = 0
        self._pov = np.random.default_rng(self._seed).integers(0, 256, (64, 64, 3), dtype=np.uint8)
        return {"pov": self._pov.copy()}

    def step(self, action: dict):
        assert self.action_space.contains(action), action
        self.actions.append(action)
        self._t += 1
        shift = sum(action[b] for b in MINERL_BUTTONS) + int(np.abs(action["camera"]).sum())
        self._pov = (self._pov.astype(np.int64) + shift + self._t).astype(np.uint8)
        return {"pov": self._pov.copy()}, float(self._t == LOG_STEP), False, {}

    def close(self) -> None:
        pass


@pytest.fixture
def env():
    e = MineRLTreechop(inner=StandInTreechop())
    yield e
    e.close()


# -- spaces ------------------------------------------------------------------------------------
def test_observation_space_mirrors_minerl():
    space = treechop_observation_space()
    assert list(space.keys()) == ["pov"]
    pov = space["pov"]
    assert pov.shape == (64, 64, 3) and pov.dtype == np.uint8
    assert np.all(pov.low == 0) and np.all(pov.high == 255)


def test_action_space_mirrors_minerl():
    space = treechop_action_space()
    assert list(space.keys()) == sorted([*MINERL_BUTTONS, "camera"])  # old gym's Dict sorts its keys too
    for b in MINERL_BUTTONS:
        assert space[b] == gym.spaces.Discrete(2)
    camera = space["camera"]
    assert camera.shape == (2,) and camera.dtype == np.float32
    assert np.all(camera.low == -180) and np.all(camera.high == 180)


# -- camera quantisation -----------------------------------------------------------------------
def test_camera_bins_are_monotone_and_in_range():
    deg = np.linspace(-30, 30, 6001)
    bins = quantize_camera(deg)
    assert bins.dtype == np.int64 and bins.shape == deg.shape
    assert np.all(np.diff(bins) >= 0)
    assert bins.min() == 0 and bins.max() == 10 and set(bins.tolist()) == set(range(11))


def test_camera_center_is_exactly_zero_and_symmetric():
    assert dequantize_camera(CAMERA_CENTER_BIN) == 0.0
    assert quantize_camera(0.0) == CAMERA_CENTER_BIN
    centers = dequantize_camera(np.arange(11))
    np.testing.assert_array_equal(centers, -centers[::-1])
    assert np.all(np.diff(centers) > 0) and centers[0] == -10 and centers[-1] == 10
    deg = np.random.default_rng(0).uniform(-20, 20, 1000)
    np.testing.assert_array_equal(quantize_camera(-deg), 10 - quantize_camera(deg))


def test_camera_clips_beyond_ten_degrees():
    np.testing.assert_array_equal(quantize_camera([-180.0, -10.5, 10.5, 180.0]), [0, 0, 10, 10])


def test_camera_bin_centers_round_trip():
    np.testing.assert_array_equal(quantize_camera(dequantize_camera(np.arange(11))), np.arange(11))


# -- flat <-> dict -----------------------------------------------------------------------------
def test_flat_round_trip_over_all_buttons():
    centers = dequantize_camera(np.arange(11))
    rng = np.random.default_rng(0)
    for pressed in itertools.product((0, 1), repeat=len(MINERL_BUTTONS)):
        camera = rng.choice(centers, 2).astype(np.float32)
        action = {**dict(zip(MINERL_BUTTONS, pressed)), "camera": camera}
        back = from_flat(to_flat(action))
        assert {b: back[b] for b in MINERL_BUTTONS} == dict(zip(MINERL_BUTTONS, pressed))
        np.testing.assert_array_equal(back["camera"], camera)


def test_flat_round_trip_over_random_vectors():
    FLAT_ACTION_SPACE.seed(0)
    for _ in range(2000):
        v = FLAT_ACTION_SPACE.sample()
        action = from_flat(v)
        assert treechop_action_space().contains(action)
        assert action["camera"].dtype == np.float32 and action["camera"].shape == (2,)
        flat = to_flat(action)
        assert flat.dtype == np.int64 and flat.shape == (10,)
        np.testing.assert_array_equal(flat, v)


def test_to_flat_of_a_minerl_sample_is_valid():
    space = treechop_action_space()
    space.seed(0)
    for _ in range(200):
        assert FLAT_ACTION_SPACE.contains(to_flat(space.sample()))


# -- the adapter -------------------------------------------------------------------------------
def test_adapter_passes_env_checker():
    env = gym.make("vidit/MineRLTreechop-v0", inner=StandInTreechop())
    assert env.spec.max_episode_steps == 200
    assert env.observation_space == treechop_observation_space()["pov"]
    assert env.action_space == FLAT_ACTION_SPACE
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_env(env.unwrapped)
    env.close()


def test_adapter_converts_actions_and_returns_pov(env):
    obs, info = env.reset(seed=7)
    assert obs.shape == (64, 64, 3) and obs.dtype == np.uint8 and info == {"success": False}
    np.testing.assert_array_equal(env.render(), obs)
    v = np.array([1, 0, 1, 0, 0, 0, 0, 0, 0, 10])
    env.step(v)
    sent = env.unwrapped._inner.actions[-1]
    assert sent["attack"] == 1 and sent["forward"] == 1 and sent["jump"] == 0
    np.testing.assert_array_equal(sent["camera"], np.float32([-10, 10]))


def test_reset_seeds_inner_env(env):
    first, _ = env.reset(seed=1)
    again, _ = env.reset(seed=1)
    other, _ = env.reset(seed=2)
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)


def test_success_latches_after_first_log(env):
    env.reset(seed=0)
    noop = to_flat({**{b: 0 for b in MINERL_BUTTONS}, "camera": np.zeros(2)})
    rewards, successes = [], []
    for _ in range(LOG_STEP + 2):
        _, reward, terminated, truncated, info = env.step(noop)
        rewards.append(reward)
        successes.append(info["success"])
        assert not terminated and not truncated
    assert rewards == [0.0, 0.0, 1.0, 0.0, 0.0]
    assert successes == [False, False, True, True, True]
    _, info = env.reset()
    assert info["success"] is False
    _, _, _, _, info = env.step(noop)
    assert info["success"] is False


@pytest.mark.parametrize("action, problem", [
    (np.zeros(9, np.int64), "shape"),
    (np.zeros((2, 10), np.int64), "shape"),
    ([0] * 9 + [float("nan")], "NaN"),
    ([2] + [0] * 9, "out of range"),
    ([0] * 9 + [11], "out of range"),
    ([-1] + [0] * 9, "out of range"),
    ([0.5] + [0] * 9, "out of range"),
    ("attack", "not numeric"),
])
def test_bad_actions_raise(env, action, problem):
    env.reset(seed=0)
    with pytest.raises(ValueError, match=problem) as err:
        env.step(action)
    assert "expected 10 ints" in str(err.value) and "[0, 10]" in str(err.value)


def test_bad_dict_actions_raise():
    good = {**{b: 0 for b in MINERL_BUTTONS}, "camera": np.zeros(2, np.float32)}
    with pytest.raises(ValueError, match="0 or 1"):
        to_flat({**good, "attack": 2})
    with pytest.raises(ValueError, match="camera"):
        to_flat({**good, "camera": np.array([np.nan, 0.0])})


# -- without MineRL ----------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["minerl", "treechop", "vidit/MineRLTreechop-v0"])
def test_make_without_minerl_says_so_in_one_line(monkeypatch, name):
    monkeypatch.setitem(sys.modules, "minerl", None)  # `import minerl` fails even where MineRL is installed
    with pytest.raises(ImportError) as err:
        envs.make(name)
    message = str(err.value)
    assert "\n" not in message
    assert "MineRL" in message and "not installed" in message and "minerl==0.4.4" in message
    assert "Crafter" in message and "vidit/Crafter-v0" in message
