"""SB3 ``VecEnv`` over the batched :class:`~worldmodel.imagination.ImaginationEnv`: one decoder pass steps
all N imagined rollouts, finished ones restart alone (``reset_dead``), numpy out, ``terminal_observation``
filled as SB3 expects."""
from __future__ import annotations

import numpy as np
import torch
from gymnasium import spaces
from stable_baselines3.common.vec_env import VecEnv

from worldmodel.imagination import ImaginationEnv


class ImaginationVecEnv(VecEnv):
    def __init__(self, core: ImaginationEnv):
        self.core = core  # before VecEnv.__init__, which reads render_mode through get_attr
        size = core.sim.frame_size
        super().__init__(core.n, spaces.Box(0, 255, (size, size, 3), np.uint8), core.action_space)
        self._actions: np.ndarray | None = None

    def reset(self) -> np.ndarray:
        if self._seeds[0] is not None:
            self.core.seed(int(self._seeds[0]))
        self._reset_seeds()
        return self.core.reset()

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = np.asarray(actions)

    def step_wait(self):
        obs, reward, terminated, truncated = self.core.step(self._actions)
        done = terminated | truncated
        infos: list[dict] = [{} for _ in range(self.num_envs)]
        for i in np.flatnonzero(done):
            infos[i] = {"terminal_observation": obs[i], "TimeLimit.truncated": bool(truncated[i] and not terminated[i])}
        if done.any():
            obs = self.core.reset_dead(torch.from_numpy(done))
        return obs, reward, done, infos

    def close(self) -> None:
        pass

    def get_images(self) -> list[np.ndarray]:
        return list(self.core.observe())

    def get_attr(self, attr_name: str, indices=None) -> list:
        return [getattr(self.core, attr_name)] * len(self._get_indices(indices))

    def set_attr(self, attr_name: str, value, indices=None) -> None:
        setattr(self.core, attr_name, value)

    def env_method(self, method_name: str, *args, indices=None, **kwargs) -> list:
        raise NotImplementedError("the imagined rollouts share one batched core; call ImaginationEnv methods on .core")

    def env_is_wrapped(self, wrapper_class, indices=None) -> list[bool]:
        return [False] * len(self._get_indices(indices))
