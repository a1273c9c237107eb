"""The MPC agent: sample action sequences, predict their videos, score them, act (VP²'s protocol).

Each step, for each episode: the planner (MPPI or CEM, :mod:`agents.planners`) proposes ``samples``
action sequences of ``horizon`` steps; a predictor turns the last ``context_frames`` observations (or
the whole episode so far) and the actions between them plus each sequence into predicted frames;
:class:`agents.costs.VideoCost` scores them (with ``futures`` K > 1, each sequence is imagined K times
and scored by the mean cost, so MPPI's sharp weights chase no single lucky imagined future, or by the
min, the luckiest); the first action of the optimised mean is executed, and the mean is shifted to
warm-start the next step. Predictors:

- :class:`ModelPredictor`: the world model, only through ``VideoSimulator.rollout`` (one batched call
  per planning round; the samples share the context prefix's KV cache);
- :class:`agents.oracle.EnvOracle`: the real simulator (VP²'s "simulator oracle").

The goal image comes from the env (a push_red instance), from the user, or is imagined by the world
model from a demo video of another instance (:func:`goal_from_demo`).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Optional, Protocol, Sequence

import gymnasium as gym
import numpy as np

from agents.costs import CostKind, VideoCost
from agents.imitation import ImitationConfig
from agents.planners import Planner, PlannerConfig
from agents.presets import MODEL, VP2, apply_preset
from vidit.seeding import call_seed
from worldmodel.sampling import SamplingConfig
from worldmodel.simulator import VideoSimulator


# Flags removed after their measured effect was null (model card of robodesk-push-red), at the value that
# behaves as the code does now: saved runs at that value still resume (vidit.runs.differences).
RETIRED = {"cost_pool": 1, "futures_reduce": "mean"}


class ModelPresets:
    """For a config holding agent settings (MPC's, its own or an ``MPCConfig`` part, and maybe an imitation
    agent's): where no flag sets them, they come from the ``--preset`` of the world model that
    :meth:`preset_model` names (see :mod:`agents.presets`)."""

    @classmethod
    def preset_model(cls, values: dict) -> Path | None:
        """The world-model folder whose presets apply to these flag values (None: no model, VP²'s settings)."""
        return None

    @classmethod
    def with_preset(cls, values: dict, given: set[str]) -> dict:
        """Flag values with the preset's settings where no flag was given."""
        model = cls.preset_model(values)
        if model is None:
            if values.get("preset", MODEL) not in (MODEL, VP2):
                raise ValueError(f"--preset {values['preset']}: presets are stored with a world model, and none is used")
            return values
        known = {f.name for f in (*fields(MPCConfig), *fields(ImitationConfig))} - {"preset"}
        return apply_preset(values, given, model, known)


@dataclass
class MPCConfig(PlannerConfig, ModelPresets):
    cost: CostKind = field(default="classifier", metadata={
        "help": "mse: pixel MSE to the goal image; classifier: VP²'s 0.5 * mse - 10 * success logits"})
    classifier: Optional[str] = field(default=None, metadata={
        "help": "success classifier folder or shipped name; several joined by + add their logits, "
                "W*NAME weighs one (push-red-k8+0.25*push-red) (none: the env's)"})
    context_frames: int = field(default=2, metadata={
        "help": "observed frames the predictor conditions on (VP²: 2); 0: the whole episode so far, with the "
                "world model predicting as much of the horizon as its window still holds"})
    mse_weight: float = field(default=0.5, metadata={"help": "classifier cost: weight of the goal MSE"})
    logit_weight: float = field(default=10.0, metadata={"help": "classifier cost: weight of the success logits"})
    futures: int = field(default=1, metadata={
        "help": "imagined futures per sample, a sample's cost the mean of theirs (1: VP²; K: K x compute)"})

    preset: str = field(default=MODEL, metadata={
        "help": "agent recipe (MPC's and the imitation agent's settings): model (the world model's recommended "
                "one, stored with it; the papers' where it has none), vp2 (the papers' settings: for MPC VP²'s, "
                "200 samples x horizon 10, their noise, 2 context frames; for imitation VidIT's, one imagined "
                "future), or another name in the model's presets.json; a flag you give beats it"})

    def __post_init__(self):
        PlannerConfig.__post_init__(self)
        if self.context_frames < 0 or self.futures < 1:
            raise ValueError(f"--context-frames must be >= 0 and --futures >= 1, got {self.context_frames} "
                             f"and {self.futures}")


class Predictor(Protocol):
    def __call__(self, row: int, context: np.ndarray, past_actions: np.ndarray | None, actions: np.ndarray,
                 seed: int) -> np.ndarray:
        """Frames uint8 ``[N, H, h, w, 3]`` for ``actions [N, H, A]`` taken after ``context [C, h, w, 3]``
        of episode ``row`` (``past_actions [C - 1, A]`` led through the context)."""

    def close(self) -> None:
        """Free what the predictor holds (the oracle's worker processes)."""


class ModelPredictor:
    """The world model as predictor."""

    def __init__(self, sim: VideoSimulator, sampling: SamplingConfig = SamplingConfig()):
        self.sim, self.sampling = sim, sampling

    def __call__(self, row, context, past_actions, actions, seed):
        """Past the model's window, the oldest context frames go first (keeping at least one frame
        to predict), then the horizon's tail: fewer frames come back than ``actions`` has steps."""
        window = self.sim.max_frames
        if len(context) >= window:
            context = context[-(window - 1):]
            past_actions = None if past_actions is None or window == 2 else past_actions[-(window - 2):]
        actions = np.asarray(actions)[:, :window - len(context)]
        return self.sim.rollout(context, actions, self.sampling, seed=seed, past_actions=past_actions)

    def close(self) -> None:
        pass


def goal_from_demo(sim: VideoSimulator, demo: np.ndarray, obs: np.ndarray, demo_frames: int, query_frames: int,
                   gen_frames: int, samples: int = 1, cost: VideoCost | None = None, seed: int = 0,
                   sampling: SamplingConfig = SamplingConfig()) -> np.ndarray:
    """A goal image for the episode at ``obs``, imagined from a demo of another instance: the prompt is
    the demo's last ``demo_frames`` frames and ``obs`` as the query; of ``samples`` imagined futures,
    the last frame of the one the cost likes best (the first one without a cost)."""
    query = np.repeat(np.asarray(obs)[None], query_frames, axis=0)
    futures = sim.imagine([demo[-demo_frames:]], query, n_frames=gen_frames, n_samples=samples, sampling=sampling,
                          seed=seed)
    goals = futures[:, -1]
    return goals[int(np.argmin(cost(goals[:, None])))] if cost is not None and samples > 1 else goals[0]


class MPCAgent:
    """Plans each active episode in turn; ``plan_seconds`` records the wall time of every planning call."""

    def __init__(self, predictor: Predictor, cost: VideoCost, cfg: MPCConfig, action_space: gym.spaces.Box,
                 goal_fn=None, goal: np.ndarray | None = None):
        if not isinstance(action_space, gym.spaces.Box):
            raise ValueError(f"MPC plans continuous actions; this env's action space is {action_space}")
        self.predictor, self.cost, self.cfg, self.space = predictor, cost, cfg, action_space
        self.goal_fn = goal_fn  # (demo, obs, seed) -> a goal image imagined from the demo
        self.goal = goal  # the user's goal image, for every episode
        self.goals: list[np.ndarray | None] = []  # per episode, set by reset
        self.plan_seconds: list[float] = []
        self.predictions: list[np.ndarray | None] = []

    def reset(self, obs: Sequence[np.ndarray], demo: np.ndarray | None = None, seeds: Sequence[int] | None = None,
              goals: Sequence[np.ndarray | None] | None = None) -> None:
        """Start episodes at ``obs``; ``goals`` are the envs' goal images (None where an env has none)."""
        b = len(obs)
        seeds = list(seeds) if seeds is not None else [0] * b
        goals = list(goals) if goals is not None else [None] * b
        for i in range(b):  # the user's goal, else one imagined from the demo, else the env's (an instance's)
            if self.goal is not None:
                goals[i] = self.goal
            elif demo is not None and self.goal_fn is not None:
                goals[i] = self.goal_fn(demo, obs[i], seeds[i])
            goals[i] = self.cost.check_goal(goals[i])  # checked now, before the episode starts
        self.goals, self.seeds = goals, seeds
        self.planners = [Planner(self.cfg, self.space.low, self.space.high, seed=s) for s in seeds]
        self.history = [[o] for o in obs]
        self.past: list[list[np.ndarray]] = [[] for _ in range(b)]
        self.steps, self.calls = [0] * b, [0] * b
        self.predictions = [None] * b

    def act(self, obs: Sequence[np.ndarray], active: Sequence[bool] | None = None) -> list[np.ndarray | None]:
        actions: list[np.ndarray | None] = [None] * len(obs)
        for i in range(len(obs)):
            if active is not None and not active[i]:
                continue
            if self.steps[i]:
                self.history[i].append(obs[i])
            context, past = self._context(i)
            best: dict = {}

            def cost_fn(samples: np.ndarray, i=i, context=context, past=past, best=best) -> np.ndarray:
                self.calls[i] += 1
                k = self.cfg.futures
                frames = self.predictor(i, context, past, np.repeat(samples, k, axis=0),
                                        seed=call_seed(self.seeds[i], self.calls[i]))
                costs = self.cost(frames, self.goals[i]).reshape(len(samples), k).mean(1)
                best["frame"] = frames[int(np.argmin(costs)) * k, 0]
                return costs

            start = time.perf_counter()
            actions[i] = self.planners[i].plan(cost_fn).astype(np.float32)
            self.plan_seconds.append(time.perf_counter() - start)
            self.predictions[i] = best["frame"]
            self.past[i].append(actions[i])
            self.steps[i] += 1
        return actions

    def _context(self, i: int) -> tuple[np.ndarray, np.ndarray | None]:
        """Episode ``i``'s last ``context_frames`` observations (all with 0; a young episode's first frame
        repeated in front, with zero actions, to fill a fixed count) and the actions between them."""
        c = self.cfg.context_frames or len(self.history[i])
        seen, done = self.history[i][-c:], self.past[i][-(c - 1):] if c > 1 else []
        context = np.stack([seen[0]] * (c - len(seen)) + seen)
        if c == 1:
            return context, None
        return context, np.stack([np.zeros(self.space.shape, np.float32)] * (c - 1 - len(done)) + done)

    def close(self) -> None:
        self.predictor.close()
