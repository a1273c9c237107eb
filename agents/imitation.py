"""The VidIT imitation agent: imagine how the query continues given a demo, read the actions off the
imagined frames with the IDM, act; replan on a receding horizon.

One planning round: the prompt is ``[bos] demo_1 .. demo_k query`` (k demo clips of ``demo_frames``
frames, the last ``query_frames`` observations, fewer early in an episode); the world model samples
``gen_frames`` frames (``n_candidates`` futures at once, sharing the prompt's KV cache); the IDM reads the window
``query + imagined`` and the actions of the imagined transitions form the plan. With several
candidates the plan whose actions the IDM finds most likely wins. The agent executes
``replan_every`` planned actions, then plans again from what it really saw. Defaults follow the
paper's main setting (k=1 demo of 8 frames, 4 query frames, 4 generated). With ``pick="cost"`` the
candidate whose imagined frames a cost (the MPC agent's, e.g. a demo-conditioned classifier) rates
closest to the demo's last frame wins instead; with ``pick="demo-actions"`` the one whose actions are likeliest
under the demo's own (``agents.action_prior``). The demo clips are the demo's last frames: like training's
demo clips, they end showing the task done.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Literal, Sequence

import numpy as np

from agents.action_prior import ActionPrior, env_action
from agents.costs import VideoCost
from idm.model import InverseDynamics
from vidit.seeding import call_seed
from worldmodel.sampling import SamplingConfig
from worldmodel.simulator import VideoSimulator


@dataclass
class ImitationConfig:
    demo_frames: int = field(default=8, metadata={"help": "frames per demo clip"})
    n_demos: int = field(default=1, metadata={"help": "demo clips in the prompt (k)"})
    query_frames: int = field(default=4, metadata={"help": "recent observations in the prompt"})
    gen_frames: int = field(default=4, metadata={"help": "frames imagined per planning round (plan length)"})
    replan_every: int = field(default=4, metadata={"help": "planned actions executed before replanning"})
    n_candidates: int = field(default=1, metadata={"help": "imagined futures per round; --pick says which wins"})
    pick: Literal["idm", "cost", "demo-actions"] = field(default="idm", metadata={
        "help": "idm: the future whose actions the IDM finds likeliest; cost: the one the cost (--cost, "
                "--classifier) rates best against the demo's last frame; demo-actions: the one whose actions "
                "the demo's (as the IDM reads them) make likeliest; without a demo: idm"})

    def __post_init__(self):
        for name in ("demo_frames", "n_demos", "query_frames", "gen_frames", "replan_every", "n_candidates"):
            if getattr(self, name) < 1:
                raise ValueError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(self, name)}")
        if self.replan_every > self.gen_frames:
            raise ValueError(f"--replan-every {self.replan_every} exceeds the plan length --gen-frames {self.gen_frames}")
        if self.pick != "idm" and self.n_candidates < 2:
            raise ValueError(f"--pick {self.pick} chooses among imagined futures: give --n-candidates >= 2")

    @property
    def demo_length(self) -> int:
        return self.demo_frames * self.n_demos


class ImitationAgent:
    """Plans for a batch of parallel episodes at once (one batched ``imagine`` call per round)."""

    def __init__(self, simulator: VideoSimulator, idm: InverseDynamics, config: ImitationConfig = ImitationConfig(),
                 cost: VideoCost | None = None, sampling: SamplingConfig = SamplingConfig()):
        self.sim, self.idm, self.cfg, self.cost, self.sampling = simulator, idm, config, cost, sampling
        if config.pick == "cost" and cost is None:
            raise ValueError("--pick cost needs a cost to rank the imagined futures")
        window = config.query_frames + config.gen_frames
        if window > idm.config.window:
            raise ValueError(f"query + generated frames ({window}) exceed the IDM's window of {idm.config.window}")
        self.plans = 0  # planning rounds this episode
        self.predictions: list[np.ndarray | None] = []
        self.goals: list[np.ndarray | None] = []  # the demo says what to do: no goal image
        self.plan_seconds: list[float] = []

    def reset(self, obs: Sequence[np.ndarray], demo: np.ndarray | None = None,
              seeds: Sequence[int] | None = None, goals: Sequence[np.ndarray | None] | None = None) -> None:
        """Start episodes at ``obs``; ``demo`` uint8 ``[T, H, W, 3]`` at the model's rate, or None (query
        only). Goal images are not used: the demo says what to do."""
        c, b = self.cfg, len(obs)
        if demo is not None and len(demo) < c.demo_length:
            raise ValueError(f"the demo has {len(demo)} frames; {c.n_demos} clip(s) of {c.demo_frames} need {c.demo_length}")
        # the clips end where the demo ends, showing its task done, as training's demo clips do
        tail = demo[len(demo) - c.demo_length:] if demo is not None else None
        self.demos = [] if tail is None else [tail[i * c.demo_frames:(i + 1) * c.demo_frames] for i in range(c.n_demos)]
        self.pick = c.pick if demo is not None else "idm"  # the other picks score futures against the demo
        if self.pick == "cost":
            self.goal = self.cost.check_goal(demo[-1])
        if self.pick == "demo-actions":
            self.prior = ActionPrior.from_demo(self.idm, demo)
        self.seeds = list(seeds) if seeds is not None else [0] * b
        self.history: list[list[np.ndarray]] = [[] for _ in range(b)]
        self.plan: list[list[Any]] = [[] for _ in range(b)]
        self.imagined: list[list[np.ndarray]] = [[] for _ in range(b)]
        self.proposals: list[np.ndarray | None] = [None] * b  # each row's last whole plan (all imagined steps)
        self.plans, self.predictions, self.goals = 0, [None] * b, [None] * b

    def act(self, obs: Sequence[np.ndarray], active: Sequence[bool] | None = None) -> list[Any]:
        rows = [i for i in range(len(obs)) if active is None or active[i]]
        for i in rows:
            self.history[i] = (self.history[i] + [obs[i]])[-self.cfg.query_frames:]
        if stale := [i for i in rows if not self.plan[i]]:
            self._replan(stale)
        actions: list[Any] = [None] * len(obs)
        for i in rows:
            self.predictions[i] = self.imagined[i].pop(0)
            actions[i] = self.plan[i].pop(0)
        return actions

    def _replan(self, rows: list[int]) -> None:
        c = self.cfg
        # the frames seen so far, up to query_frames (episodes of one batch run in step, so rows agree)
        start = time.perf_counter()
        seen = min(len(self.history[i]) for i in rows)
        queries = np.stack([np.stack(self.history[i][-seen:]) for i in rows])
        futures = self.sim.imagine_batch(self.demos, queries, n_frames=c.gen_frames, n_samples=c.n_candidates,
                                         sampling=self.sampling, seed=call_seed(self.seeds[rows[0]], self.plans))  # [R, n, G, ...]
        self.plans += 1
        window = np.concatenate([np.repeat(queries[:, None], c.n_candidates, 1), futures], axis=2)
        actions, loglik = self.idm.predict(window.reshape(-1, *window.shape[2:]))
        planned = slice(seen - 1, None)  # transitions into the imagined frames
        actions = actions.reshape(len(rows), c.n_candidates, *actions.shape[1:])[:, :, planned]
        if self.pick == "cost":
            best = self.cost(futures.reshape(-1, *futures.shape[2:]), self.goal).reshape(len(rows), -1).argmin(1)
        elif self.pick == "demo-actions":
            best = self.prior.log_prob(actions).mean(-1).argmax(1)
        else:
            best = loglik.reshape(len(rows), c.n_candidates, -1)[:, :, planned].mean(-1).argmax(1)
        for r, i in enumerate(rows):
            whole = [env_action(a, self.idm.config.action_space) for a in actions[r, best[r]]]
            self.plan[i], self.proposals[i] = whole[:c.replan_every], np.stack(whole)
            self.imagined[i] = list(futures[r, best[r]][:c.replan_every])
        self.plan_seconds.append(time.perf_counter() - start)

    def close(self) -> None:
        pass
