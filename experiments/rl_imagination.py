"""``rl_imagination``: PPO trained inside the push_red world model, scored in the real RoboDesk env, beside
the same PPO trained for the same wall-clock time in the real env.

    python -m experiments.rl_imagination --out results/rl_imagination --minutes 15 --threads 1  # ~45 min, 2 cores
    python -m experiments.rl_imagination --minutes none --steps 4096 --out results/rl_steps     # equal step budgets
    python -m experiments.rl_imagination --quick --out /tmp/rl_quick                          # CI-sized: a minute

Both arms train stable-baselines3 PPO (``CnnPolicy``: NatureCNN on the 64x64 frames, the same
hyperparameters) for the same objective: each step's reward is the success classifier's probability
(sigmoid of its logit, ``worldmodel.imagination.classifier_reward``) that the frame shows the button
pressed. The imagination arm sees imagined frames (``ImaginationVecEnv``, ``--n-envs`` world-model
rollouts started from the model's shipped real first frames); the real arm sees real ones (``--n-envs``
RoboDesk envs from random start states). So simulator vs world model is the only difference. Each arm
trains for ``--minutes`` of wall clock (PPO's ``learn``; loading models and making envs not counted)
or ``--steps`` env steps, whichever ends first. Each policy (deterministic actions) and a random policy
then run once from each of the first ``--eval-instances`` VP² benchmark instances in the real env;
success is ``info["success"]`` at any step, the return is the classifier reward on the real frames.

Writes ``rl_imagination.{md,csv,json,png}``: per arm the training minutes, real and imagined env steps,
real-env success (95% Wilson interval), mean eval return, the mean return of the last (up to 100)
training episodes in the arm's own env, and the env steps saved (the real steps the real arm took, none
of which the imagination arm needed). Every phase keeps its output (``train/<arm>/policy.zip`` then
``train.json``; ``eval/<policy>.json`` and the first ``--videos`` episodes as mp4) and a rerun skips it,
so a killed run continues; ``--out`` remembers its configuration (``bench_config.json``) and refuses
another. With ``--minutes`` the result depends on the machine's speed; with ``--steps`` alone it depends
only on the seed.
"""
from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import gymnasium as gym
import numpy as np
import torch
from stable_baselines3 import PPO
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.vec_env import DummyVecEnv, VecEnv, VecMonitor
from tqdm import tqdm

import envs
from envs.robodesk import N_BENCHMARK
from envs.video import write
from experiments.imitation_bench import wilson
from experiments.tables import figure, weights_digest, write_table
from vidit.cli import UsageError, config_json, run
from vidit.files import atomic_path, write_json
from vidit.runs import claim_out
from worldmodel.classifier import SuccessClassifier
from worldmodel.imagination import START_FRAMES, ImaginationEnv, RewardFn, classifier_reward
from worldmodel.sb3_vec_env import ImaginationVecEnv
from worldmodel.simulator import VideoSimulator, resolve_model

ARMS = {"imagination": "PPO in imagination", "real": "PPO in real env"}
POLICIES = {**ARMS, "random": "random policy"}
ENV_ID = "vidit/PushRed-v0"
VOLATILE = frozenset({"out", "threads"})  # flags a resumed run may change: they change speed, not what is measured
SCALE = 4  # eval video upscale, as run_agent


@dataclass
class RLImaginationConfig:
    """PPO in the push_red world model vs PPO in the real env for the same wall-clock time, both scored
    in the real env."""
    out: Path = field(default=Path("results/rl_imagination"), metadata={"help": "output folder"})
    model: str = field(default="robodesk-push-red", metadata={
        "help": "push_red world model: folder (with start_frames.npy) or shipped name"})
    classifier: str = field(default="push-red", metadata={"help": "success classifier: folder or shipped name"})
    minutes: Optional[float] = field(default=15.0, metadata={"help": "wall-clock training per arm (none: no limit)"})
    steps: Optional[int] = field(default=None, metadata={"help": "env steps per arm at most (none: no limit)"})
    n_envs: int = field(default=16, metadata={"help": "parallel envs per arm (imagined rollouts / real env copies)"})
    n_steps: int = field(default=16, metadata={"help": "PPO: steps per env per rollout"})
    batch_size: int = field(default=64, metadata={"help": "PPO: minibatch size"})
    epochs: int = field(default=4, metadata={"help": "PPO: epochs per rollout"})
    lr: float = field(default=3e-4, metadata={"help": "PPO: learning rate"})
    episode_steps: int = field(default=15, metadata={"help": "control steps per episode, training and eval (VP²: 15)"})
    eval_instances: int = field(default=N_BENCHMARK, metadata={"help": "eval on VP² benchmark instances 0..N-1"})
    videos: int = field(default=3, metadata={"help": "eval episodes per policy saved as mp4"})
    seed: int = field(default=0, metadata={"help": "seed of PPO, the envs and the random policy"})
    threads: int = field(default=1, metadata={"help": "torch CPU threads"})
    quick: bool = field(default=False, metadata={
        "help": "2 envs, one 8-step PPO rollout per arm, 2 eval instances of 3 steps (CI-sized)"})

    def __post_init__(self):
        if (self.minutes is not None and self.minutes <= 0) or self.lr <= 0:
            raise UsageError("--minutes and --lr must be > 0")
        counts = ("n_envs", "n_steps", "batch_size", "epochs", "episode_steps", "threads")
        if any(getattr(self, k) < 1 for k in counts) or (self.steps is not None and self.steps < 1) or self.videos < 0:
            raise UsageError(f"--{', --'.join(k.replace('_', '-') for k in counts)} and --steps must be >= 1, "
                             "--videos >= 0")
        if not 1 <= self.eval_instances <= N_BENCHMARK:
            raise UsageError(f"--eval-instances must lie in [1, {N_BENCHMARK}], got {self.eval_instances}")
        if self.quick:
            self.n_envs, self.n_steps, self.batch_size, self.epochs = min(self.n_envs, 2), min(self.n_steps, 4), 8, 1
            self.steps = min(self.steps or 8, 8)
            self.eval_instances, self.episode_steps = min(self.eval_instances, 2), min(self.episode_steps, 3)
            self.videos = min(self.videos, 1)
        if self.minutes is None and self.steps is None:
            raise UsageError("give a training budget: --minutes, --steps or both")


class ClassifierReward(gym.Wrapper):
    """The real env rewarded like the imagination arm: ``reward_fn`` of each new real frame."""

    def __init__(self, env: gym.Env, reward_fn: RewardFn):
        super().__init__(env)
        self.reward_fn = reward_fn

    def step(self, action):
        obs, _, terminated, truncated, info = self.env.step(action)
        return obs, float(self.reward_fn(torch.tensor(obs[None]), None)[0]), terminated, truncated, info


class Budget(BaseCallback):
    """Stops PPO after ``minutes`` of wall clock; records the training curve (minutes, steps, mean return of
    the last episodes) at the end of each rollout."""

    def __init__(self, minutes: float | None, steps: int | None, desc: str):
        super().__init__()
        self.limit_s = math.inf if minutes is None else 60 * minutes
        self.steps, self.desc = steps, desc
        self.curve: list[dict] = []

    def _on_training_start(self) -> None:
        self.start = time.perf_counter()
        self.bar = tqdm(total=self.steps, desc=self.desc, unit="step")

    def minutes(self) -> float:
        return (time.perf_counter() - self.start) / 60

    def mean_return(self) -> float | None:
        returns = [e["r"] for e in self.model.ep_info_buffer]
        return round(float(np.mean(returns)), 3) if returns else None

    def _on_step(self) -> bool:
        self.bar.update(self.training_env.num_envs)
        return self.minutes() * 60 < self.limit_s

    def _on_rollout_end(self) -> None:
        self.curve.append({"minutes": round(self.minutes(), 3), "steps": self.num_timesteps,
                           "return": self.mean_return()})
        self.bar.set_postfix(minutes=f"{self.minutes():.1f}", ret=self.curve[-1]["return"])

    def _on_training_end(self) -> None:
        if not self.curve or self.curve[-1]["steps"] != self.num_timesteps:  # the budget ran out mid-rollout
            self._on_rollout_end()
        self.bar.close()


def _real_env(cfg: RLImaginationConfig, reward_fn: RewardFn) -> gym.Env:
    return ClassifierReward(envs.make(ENV_ID, max_episode_steps=cfg.episode_steps), reward_fn)


def _train_env(cfg: RLImaginationConfig, arm: str, reward_fn: RewardFn) -> VecEnv:
    if arm == "imagination":
        root = resolve_model(cfg.model)
        core = ImaginationEnv(VideoSimulator.from_pretrained(root), np.load(root / START_FRAMES), n_envs=cfg.n_envs,
                              max_steps=cfg.episode_steps, reward_fn=reward_fn, seed=cfg.seed)
        return VecMonitor(ImaginationVecEnv(core))
    return VecMonitor(DummyVecEnv([lambda: _real_env(cfg, reward_fn)] * cfg.n_envs))


def _done(path: Path, what: str) -> dict | None:
    """The saved output of a phase, if it finished (then it is skipped)."""
    if not path.is_file():
        return None
    print(f"rl_imagination: skip {what}: done ({path})")
    return json.loads(path.read_text())


def train(cfg: RLImaginationConfig, arm: str, reward_fn: RewardFn) -> dict:
    """PPO in one arm's env for the budget; saves ``policy.zip`` then ``train.json`` (its summary)."""
    folder = cfg.out / "train" / arm
    done = _done(folder / "train.json", f"training {arm}")
    if done:
        return done
    venv = _train_env(cfg, arm, reward_fn)
    model = PPO("CnnPolicy", venv, n_steps=cfg.n_steps, batch_size=cfg.batch_size, n_epochs=cfg.epochs,
                learning_rate=cfg.lr, seed=cfg.seed, device="cpu", verbose=0)
    budget = Budget(cfg.minutes, cfg.steps, f"PPO in {arm}")
    model.learn(total_timesteps=cfg.steps or 10 ** 12, callback=budget)
    venv.close()
    with atomic_path(folder / "policy.zip") as tmp:
        model.save(tmp)
    steps = int(model.num_timesteps)
    summary = {"arm": arm, "minutes": round(budget.minutes(), 2), "real_steps": steps if arm == "real" else 0,
               "imagined_steps": steps if arm == "imagination" else 0, "train_return": budget.mean_return(),
               "curve": budget.curve}
    write_json(folder / "train.json", summary)
    return summary


def evaluate(cfg: RLImaginationConfig, policy: str, reward_fn: RewardFn) -> dict:
    """One real episode per benchmark instance with ``policy`` (deterministic actions, or random)."""
    path = cfg.out / "eval" / f"{policy}.json"
    done = _done(path, f"eval {policy}")
    if done:
        return done
    env = _real_env(cfg, reward_fn)
    if policy == "random":
        env.action_space.seed(cfg.seed)
        act = lambda obs: env.action_space.sample()  # noqa: E731
    else:
        model = PPO.load(cfg.out / "train" / policy / "policy.zip", device="cpu")
        act = lambda obs: model.predict(obs, deterministic=True)[0]  # noqa: E731
    episodes = []
    for instance in tqdm(range(cfg.eval_instances), desc=f"eval {policy}", unit="ep"):
        obs, _ = env.reset(seed=cfg.seed + instance, options={"instance": instance})
        frames, ret, success, end = [obs], 0.0, False, False
        while not end:
            obs, reward, terminated, truncated, info = env.step(act(obs))
            frames.append(obs)
            ret, success, end = ret + reward, success or info["success"], terminated or truncated
        if instance < cfg.videos:
            write(cfg.out / "eval" / policy / f"instance_{instance:02d}.mp4",
                  np.stack(frames).repeat(SCALE, axis=1).repeat(SCALE, axis=2), fps=env.metadata["render_fps"])
        episodes.append({"instance": instance, "success": bool(success), "return": round(ret, 4)})
    env.close()
    result = {"policy": policy, "episodes": episodes}
    write_json(path, result)
    return result


def summarize(trained: dict[str, dict], evals: dict[str, dict]) -> list[dict]:
    rows = []
    for policy, label in POLICIES.items():
        eps, t = evals[policy]["episodes"], trained.get(policy, {})
        wins, n = sum(e["success"] for e in eps), len(eps)
        low, high = wilson(wins, n)
        rows.append({"arm": label, "train_min": t.get("minutes", 0), "real_steps": t.get("real_steps", 0),
                     "imagined_steps": t.get("imagined_steps", 0), "episodes": n, "success": round(wins / n, 3),
                     "ci95": f"{low:.2f}-{high:.2f}",
                     "eval_return": round(float(np.mean([e["return"] for e in eps])), 3),
                     "train_return": t.get("train_return", "-"),
                     "steps_saved": trained["real"]["real_steps"] if policy == "imagination" else "-"})
    return rows


def main(cfg: RLImaginationConfig) -> list[dict]:
    torch.set_num_threads(cfg.threads)
    # Bad input fails here, before --out is touched.
    root = resolve_model(cfg.model)
    trained_on = json.loads((root / "config.json").read_text()).get("env_id")
    if trained_on not in (None, ENV_ID):
        raise UsageError(f"world model {cfg.model} was trained on {trained_on}, not {ENV_ID}")
    if not (root / START_FRAMES).is_file():
        raise UsageError(f"world model {cfg.model} ships no {START_FRAMES} to start imagined episodes from")
    reward_fn = classifier_reward(SuccessClassifier.from_pretrained(cfg.classifier))
    config = config_json(cfg)
    claim_out(cfg.out, config, VOLATILE)
    trained = {arm: train(cfg, arm, reward_fn) for arm in ARMS}
    evals = {policy: evaluate(cfg, policy, reward_fn) for policy in POLICIES}
    rows = summarize(trained, evals)
    keys = ["arm", "train_min", "real_steps", "imagined_steps", "episodes", "success", "ci95", "eval_return",
            "train_return", "steps_saved"]
    write_table(cfg.out, "rl_imagination", rows, keys,
                {"config": config, "model": {"path": str(root), "sha256": weights_digest(root)},
                 "curves": {arm: t["curve"] for arm, t in trained.items()}})
    _plot(rows, trained, cfg.out / "rl_imagination.png")
    print((cfg.out / "rl_imagination.md").read_text())
    return rows


def _plot(rows: list[dict], trained: dict[str, dict], path: Path) -> None:
    with figure(path, 1, 2, figsize=(9, 3.6)) as (fig, axes):
        bars, curves = axes[0]
        success = np.array([r["success"] for r in rows])
        low, high = np.array([[float(x) for x in r["ci95"].split("-")] for r in rows]).T
        bars.bar(range(len(rows)), success, yerr=[success - low, high - success], capsize=3, color=["C0", "C1", "C7"])
        bars.set_xticks(range(len(rows)), [r["arm"] for r in rows], rotation=20, ha="right", fontsize=8)
        bars.set_ylim(0, 1.05)
        bars.set_ylabel("real push_red success (95% CI)")
        bars.set_title(f"{rows[0]['episodes']} benchmark instances")
        for color, (arm, t) in zip(("C0", "C1"), trained.items()):
            points = [p for p in t["curve"] if p["return"] is not None]
            curves.plot([p["minutes"] for p in points], [p["return"] for p in points], "o-", color=color,
                        label=f"{ARMS[arm]} ({t['real_steps'] + t['imagined_steps']} steps)")
        curves.set_xlabel("training wall clock (min)")
        curves.set_ylabel("episode return in own env")
        curves.set_title("classifier reward while training")
        curves.legend(fontsize=8)


def cli() -> None:
    run(main, RLImaginationConfig)


if __name__ == "__main__":
    cli()
