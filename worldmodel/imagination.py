"""Environments that step inside the world model, so RL code trains in imagination.

:class:`ImaginationEnv` is batched and torch-native (DIAMOND's shape): N imagined rollouts advance
in one decoder pass per step, each reset from real start frames, and ``reset_dead(mask)`` restarts
only the finished ones. Thin adapters sit on top: :class:`ImaginationGymEnv`, a single
``gymnasium.Env`` (``check_env`` passes), and ``worldmodel.sb3_vec_env.ImaginationVecEnv`` for SB3.

Reward is pluggable: ``reward_fn(frames uint8 [N, H, W, 3], goal uint8 [H, W, 3] | None) -> [N]``;
the default is the negative mean squared distance to the goal image in [0, 1] pixels (0 without a goal);
``classifier_reward(classifier)`` rewards each frame with a success classifier's probability instead.

Importing this module registers ``vidit/Imagination-v0`` (:func:`make_imagination_env`).
"""
from __future__ import annotations

from typing import Callable

import gymnasium as gym
import numpy as np
import torch

from worldmodel.sampling import SamplingConfig
from worldmodel.simulator import VideoSimulator, resolve_model

if "vidit/Imagination-v0" not in gym.registry:
    gym.register(id="vidit/Imagination-v0", entry_point="worldmodel.imagination:make_imagination_env",
                 max_episode_steps=15, nondeterministic=False)

RewardFn = Callable[[torch.Tensor, "torch.Tensor | None"], torch.Tensor]


def goal_distance_reward(frames: torch.Tensor, goal: torch.Tensor | None) -> torch.Tensor:
    if goal is None:
        return torch.zeros(len(frames))
    diff = (frames.float() - goal.float()) / 255.0
    return -(diff ** 2).mean(dim=(1, 2, 3))


def classifier_reward(classifier: torch.nn.Module) -> RewardFn:
    """A reward of ``sigmoid(logit)`` per frame in [0, 1]: the probability that a success classifier
    (``worldmodel.classifier.SuccessClassifier``) sees success in it; the goal is ignored."""
    classifier.eval()

    @torch.no_grad()
    def reward(frames: torch.Tensor, goal: torch.Tensor | None) -> torch.Tensor:
        return torch.sigmoid(classifier(frames)).float()
    return reward


def action_space_of(sim: VideoSimulator) -> gym.Space:
    space = sim.actions.space
    if space is None:
        raise ValueError("this world model was trained without actions; it cannot be stepped as an env")
    if space["type"] == "box":
        return gym.spaces.Box(np.array(space["low"], np.float32), np.array(space["high"], np.float32),
                              tuple(space["shape"]), np.float32)
    if space["type"] == "discrete":
        return gym.spaces.Discrete(space["n"])
    return gym.spaces.MultiDiscrete(space["nvec"])


class ImaginationEnv:
    """``n_envs`` imagined rollouts; contexts hold the last ``context_frames`` frames as token ids (on the CPU)."""

    render_mode = "rgb_array"  # observe() returns every row's current frame

    def __init__(self, sim: VideoSimulator, start_frames: np.ndarray, n_envs: int = 1, max_steps: int = 15,
                 context_frames: int = 4, reward_fn: RewardFn = goal_distance_reward, goal: np.ndarray | None = None,
                 sampling: SamplingConfig = SamplingConfig(), seed: int = 0):
        """``start_frames``: uint8 ``[M, H, W, 3]`` real frames an episode may start from."""
        self.sim, self.n, self.max_steps, self.context_frames = sim, n_envs, max_steps, context_frames
        self.reward_fn, self.sampling = reward_fn, sampling
        self.goal = None if goal is None else torch.as_tensor(goal)
        self.starts = sim.tokenizer.encode(np.asarray(start_frames)[:, None])[:, 0].cpu()  # [M, h, w]
        self.action_space = action_space_of(sim)
        self.rng = np.random.default_rng(seed)
        self.context = torch.zeros(n_envs, context_frames, *self.starts.shape[1:], dtype=torch.long)
        self.length = torch.zeros(n_envs, dtype=torch.long)  # frames held per row (<= context_frames)
        self.steps = torch.zeros(n_envs, dtype=torch.long)

    def seed(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)

    def reset(self) -> np.ndarray:
        return self.reset_dead(torch.ones(self.n, dtype=torch.bool))

    def reset_dead(self, mask: torch.Tensor) -> np.ndarray:
        """Restart the rows in ``mask`` from random start frames; returns every row's observation."""
        rows = torch.nonzero(mask).flatten()
        pick = torch.as_tensor(self.rng.integers(len(self.starts), size=len(rows)))
        self.context[rows] = 0
        self.context[rows, -1] = self.starts[pick]
        self.length[rows], self.steps[rows] = 1, 0
        return self.observe()

    def observe(self) -> np.ndarray:
        return self.sim.tokenizer.decode(self.context[:, -1:].clone()).cpu().numpy()[:, 0]

    def step(self, actions) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Advance every row by one imagined frame; returns obs, reward, terminated, truncated."""
        enc = self.sim.actions.encode(actions)
        if enc.shape[0] != self.n:
            raise ValueError(f"got {enc.shape[0]} actions for {self.n} envs")
        # Rows hold different amounts of history; left-aligned contexts would mis-position frames, so
        # each distinct length is generated as its own batch (a fresh row has 1 frame, others C).
        new = torch.empty(self.n, *self.starts.shape[1:], dtype=torch.long)
        for length in self.length.unique().tolist():
            rows = torch.nonzero(self.length == length).flatten()
            new[rows] = self.sim.next_frames(self.context[rows, -length:], enc[rows], self.sampling,
                                             seed=int(self.rng.integers(2**31))).cpu()
        self.context = torch.cat([self.context[:, 1:], new[:, None]], dim=1)
        self.length = (self.length + 1).clamp(max=self.context_frames)
        self.steps += 1
        obs = self.observe()
        reward = self.reward_fn(torch.from_numpy(obs), self.goal).numpy().astype(np.float32)
        truncated = (self.steps >= self.max_steps).numpy()
        return obs, reward, np.zeros(self.n, bool), truncated


class ImaginationGymEnv(gym.Env):
    """A single imagined rollout as a ``gymnasium.Env``; ``reset(seed=…)`` makes it reproducible."""

    metadata = {"render_modes": ["rgb_array"], "render_fps": 10}

    def __init__(self, sim: VideoSimulator, start_frames: np.ndarray, render_mode: str | None = "rgb_array", **kwargs):
        self.core = ImaginationEnv(sim, start_frames, n_envs=1, **kwargs)
        self.render_mode = render_mode
        self.action_space = self.core.action_space
        size = sim.frame_size
        self.observation_space = gym.spaces.Box(0, 255, (size, size, 3), np.uint8)
        self._obs: np.ndarray | None = None

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self.core.seed(int(self.np_random.integers(2**31)))
        self._obs = self.core.reset()[0]
        return self._obs, {}

    def step(self, action):
        if not self.action_space.contains(np.asarray(action, dtype=self.action_space.dtype)):
            raise ValueError(f"action {action!r} is outside {self.action_space}")
        obs, reward, terminated, truncated = self.core.step(np.asarray(action)[None])
        self._obs = obs[0]
        return self._obs, float(reward[0]), bool(terminated[0]), bool(truncated[0]), {}

    def render(self):
        return self._obs if self.render_mode == "rgb_array" else None


START_FRAMES = "start_frames.npy"


def make_imagination_env(model: str = "robodesk-push-red", start_frames: np.ndarray | None = None,
                         **kwargs) -> ImaginationGymEnv:
    """The entry point of ``gymnasium.make("vidit/Imagination-v0", model=...)``: a world model (folder or
    shipped name) as an env, starting from ``start_frames`` or else the real frames shipped beside it
    (``start_frames.npy``). Seeded by ``reset(seed=...)``, so registered as deterministic."""
    root = resolve_model(model)
    if start_frames is None:
        if not (root / START_FRAMES).is_file():
            raise ValueError(f"world model {model} ships no {START_FRAMES}; pass start_frames=[M, H, W, 3] uint8")
        start_frames = np.load(root / START_FRAMES)
    return ImaginationGymEnv(VideoSimulator.from_pretrained(root), start_frames, **kwargs)
