"""``run_agent``: put an agent in a real env with a demo video and record what it does.

    run_agent --env crafter --demo chop_wood.mp4                # shipped demo, world model and IDM
    run_agent --env push_red --demo push_red.mp4 --episodes 30  # the 30 VP² task instances
    run_agent --env crafter --agent expert --episodes 50
    run_agent --env push_red --agent mpc --samples 32 --horizon 4  # MPPI + classifier cost to the instance's goal
    run_agent --env push_red --agent mpc --demo push_red.mp4  # goal imagined from a demo of another instance
    run_agent --env robodesk --task push_green --agent mpc --demo push_green.mp4  # the task from the demo alone

Writes to ``--out``: ``episode_000.mp4`` ... (real observation | imagined frame | MPC goal, side by side, x4),
``metrics.json`` (per episode: seed, instance, success, steps, return, wall time, and where the env reports
``info["distance"]`` (push_red: end effector to button, m) its value after every step, the final and the
smallest; where it reports ``info["task_success"]``, every task's success and the step each was first done; and the summary)
and prints a one-line summary. Episode ``i`` uses seed ``--seed + i``; on RoboDesk it starts from
task instance ``(--instance + i) mod 60`` (0-29: the VP² benchmark set, 30-59: held out).

Agents never read the env's task: on ``vidit/RoboDesk-v0`` (several tasks, one desk) they get no goal
image from the env either, so only the demo can tell them what to do. ``vidit/PushRed-v0`` hands them
its instance's goal image, as VP²'s protocol does.
Everything is checked (env, demo, models) before the first episode, so bad input writes nothing.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Optional

import gymnasium as gym
import numpy as np
import torch
from tqdm import tqdm

import envs
from agents.action_prior import DemoActionAgent
from agents.base import Agent, PolicyAgent
from agents.costs import VideoCost
from agents.guided import GuidedAgent
from agents.imitation import ImitationAgent, ImitationConfig
from agents.mpc import RETIRED, MPCAgent, MPCConfig, ModelPredictor, ModelPresets, goal_from_demo
from agents.oracle import EnvOracle
from envs.actions import space_json
from envs.demos import load_demo
from envs.video import read, write
from idm.model import InverseDynamics
from vidit.cli import UsageError, config_json, defaults_json, run
from vidit.files import write_json
from vidit.runs import differences
from worldmodel.classifier import load_classifiers
from worldmodel.precision import Precision, device_field, precision_field, resolve_dtype
from worldmodel.sampling import SamplingConfig
from worldmodel.simulator import VideoSimulator, resolve_model

# Shipped world model, IDM and MPC success classifier per env id. push_red plans with ``push-red-k8``
# (success 8 steps ahead), which grades the approach where ``push-red`` (success now) is flat.
DEFAULTS = {"vidit/PushRed-v0": ("robodesk-push-red", "push-red", "push-red-k8"),
            "vidit/RoboDesk-v0": ("robodesk", "robodesk", "desk-demo-k8"),
            "vidit/Crafter-v0": ("crafter", "crafter", None)}
INSTANCE_ENVS = ("vidit/PushRed-v0", "vidit/RoboDesk-v0")  # envs whose episodes start from task instances
GOAL_ENVS = ("vidit/PushRed-v0",)  # envs whose instance goal image the agent may use (VP²'s protocol)
INSTANCES = 60
SCALE = 4  # video upscale, so 64 px frames are watchable
AgentName = Literal["imitate", "mpc", "guided", "oracle", "random", "expert", "demo-actions"]  # the keys of AGENTS


@dataclass
class RunAgentConfig(ModelPresets):
    """Run an agent (the VidIT imitation agent, the MPC agent or a baseline) in a real env, from a demo video."""
    env: str = field(default="vidit/PushRed-v0", metadata={
        "help": "env id or short name: vidit/PushRed-v0 (push_red), vidit/RoboDesk-v0 (robodesk, push_green, "
                "push_blue), vidit/Crafter-v0 (crafter, chop_wood, eat_cow, ...), minerl"})
    task: Optional[str] = field(default=None, metadata={
        "help": "the env's task, which only scores the episodes (agents never read it); none: the env's default"})
    demo: Optional[str] = field(default=None, metadata={
        "help": "demo video (any size, fps, codec) or a shipped demo name (chop_wood.mp4, eat_cow.mp4, "
                "push_red.mp4); none: query only"})
    agent: AgentName = field(default="imitate", metadata={
        "help": "imitate: world model + IDM; mpc: MPPI/CEM through the world model; guided: that MPC started "
                "from the imitation agent's plan for the demo; oracle: the same MPC with "
                "the real simulator as predictor; random; expert (scripted); demo-actions: the demo's action frequencies "
                "(IDM-read), no world model"})
    goal: Optional[Path] = field(default=None, metadata={
        "help": "mpc/oracle: goal image file (none: imagined from --demo, else the task instance's goal)"})
    oracle_workers: int = field(default=2, metadata={"help": "oracle: processes stepping env copies"})
    episodes: int = field(default=1, metadata={"help": "episodes to run"})
    batch: int = field(default=1, metadata={
        "help": "episodes run side by side (one env each): the imitation agent imagines for all of them in one "
                "batched call; MPC plans them one after another (each call already batches its samples); "
                "results are reproducible for the same --seed and --batch"})
    seed: int = field(default=0, metadata={"help": "episode i uses seed + i"})
    instance: int = field(default=0, metadata={"help": "RoboDesk: episode i starts task instance (instance + i) mod 60"})
    model: Optional[str] = field(default=None, metadata={"help": "world model folder or shipped name (none: the env's)"})
    idm: Optional[str] = field(default=None, metadata={"help": "IDM folder or shipped name (none: the env's)"})
    out: Path = field(default=Path("runs/agent"), metadata={"help": "output folder"})
    max_steps: Optional[int] = field(default=None, metadata={"help": "step budget (none: the env's)"})
    stop_on_success: bool = field(default=True, metadata={"help": "end an episode at its first success"})
    threads: Optional[int] = field(default=None, metadata={"help": "torch CPU threads (none: torch's choice)"})
    device: str = device_field()
    precision: Precision = precision_field()

    imitation: ImitationConfig = field(default_factory=ImitationConfig, metadata={
        "help": "the imitation agent (--agent imitate): world model + IDM"})
    mpc: MPCConfig = field(default_factory=MPCConfig, metadata={
        "help": "the MPC agent and the oracle: planner, cost (which --pick cost uses too) and the recipe preset "
                "(of every agent)"})
    sampling: SamplingConfig = field(default_factory=SamplingConfig, metadata={
        "help": "how the world model samples, for every agent that imagines"})

    @classmethod
    def preset_model(cls, values: dict) -> Path | None:
        """The agents that imagine or plan take their recipe from the world model they use (the env's shipped one)."""
        if values.get("agent") not in ("imitate", "mpc", "guided", "oracle"):
            return None
        model = values.get("model") or DEFAULTS.get(envs.resolve(values["env"])[0], (None,))[0]
        return resolve_model(model) if model else None

    def __post_init__(self):
        for name in ("episodes", "batch"):
            if getattr(self, name) < 1:
                raise UsageError(f"--{name} must be >= 1, got {getattr(self, name)}")
        if self.max_steps is not None and self.max_steps < 1:
            raise UsageError(f"--max-steps must be >= 1, got {self.max_steps}")
        if self.threads is not None and self.threads < 1:
            raise UsageError(f"--threads must be >= 1, got {self.threads}")
        if self.oracle_workers < 0:
            raise UsageError(f"--oracle-workers must be >= 0, got {self.oracle_workers}")
        if not 0 <= self.instance < INSTANCES:
            raise UsageError(f"--instance must lie in [0, {INSTANCES}), got {self.instance}")


def make_env(cfg: RunAgentConfig):
    kwargs = {} if cfg.max_steps is None else {"max_episode_steps": cfg.max_steps}
    if cfg.task is not None:
        kwargs["task"] = cfg.task
    try:
        return envs.make(cfg.env, **kwargs)
    except TypeError:
        raise UsageError(f"--env {cfg.env} has no tasks to choose from; drop --task (vidit/RoboDesk-v0 and "
                         "vidit/Crafter-v0 take one)") from None
    except UsageError:
        raise
    except ValueError as e:
        raise UsageError(f"--env {cfg.env} --task {cfg.task}: {e}") from None
    except ImportError as e:
        demo = f" --demo {cfg.demo}" if cfg.demo else ""
        raise UsageError(f"{e}. The same run on Crafter: run_agent --env crafter{demo or ' --demo chop_wood.mp4'} "
                         f"--agent {cfg.agent}") from None


def _defaults(cfg: RunAgentConfig, env_id: str) -> tuple[str, str, str | None]:
    """The world model, IDM and classifier to use: the flags, else the env's shipped ones."""
    shipped = DEFAULTS.get(env_id)
    chosen = (cfg.model, cfg.idm, cfg.mpc.classifier)
    if shipped is None and (cfg.model is None or (cfg.agent in ("imitate", "guided") and cfg.idm is None)):
        raise UsageError(f"no shipped world model / IDM for {env_id}; pass --model and --idm")
    return tuple(c if c is not None else (shipped[k] if shipped else None) for k, c in enumerate(chosen))


def _simulator(model: str, env_id: str, frame_size: int, device: str, precision: Precision) -> VideoSimulator:
    sim = VideoSimulator.from_pretrained(model, device=device, dtype=resolve_dtype(precision, device))
    trained_on = sim.config.get("env_id")
    if trained_on and trained_on != env_id:
        raise UsageError(f"world model {model} was trained on {trained_on}, not {env_id}")
    if sim.frame_size != frame_size:
        raise UsageError(f"world model {model} makes {sim.frame_size}px frames; {env_id} shows {frame_size}px")
    return sim


def _goal_image(path: Path, shape: tuple[int, ...]) -> np.ndarray:
    """A goal image from an image or video file (its last frame), checked against the env's frames."""
    if not path.is_file():
        raise UsageError(f"--goal {path}: no such file")
    if path.suffix.lower() in (".mp4", ".avi", ".mov", ".webm", ".mkv"):
        goal = read(path)[-1]
    else:
        from PIL import Image
        goal = np.asarray(Image.open(path).convert("RGB"))
    if goal.shape != shape:
        raise UsageError(f"--goal {path} is {goal.shape[1]}x{goal.shape[0]}; this env's frames are "
                         f"{shape[1]}x{shape[0]} (expected an image of shape {shape})")
    return goal


def _cost(cfg: RunAgentConfig, env_id: str, frame_shape: tuple, classifier_name, ids: dict,
          with_classifier: bool) -> VideoCost:
    """The ``--cost`` for ``env_id``, with its classifiers loaded if ``with_classifier`` (recorded in ``ids``)."""
    classifiers = []
    if with_classifier:
        if classifier_name is None:
            raise UsageError(f"no shipped success classifier for {env_id}; pass --classifier or use --cost mse")
        classifiers = [c.to(cfg.device) for c in load_classifiers(classifier_name)]
        ids["classifier"] = str(classifier_name)
    return VideoCost(cfg.mpc.cost, frame_shape, classifiers, cfg.mpc.mse_weight, cfg.mpc.logit_weight)


Built = tuple[Agent, dict, Optional[VideoSimulator]]  # the agent, what identifies its models, its world model


def _policy_agent(cfg: RunAgentConfig, env_list: list) -> Built:
    return PolicyAgent(env_list, cfg.agent), {}, None


def _demo_action_agent(cfg: RunAgentConfig, env_list: list) -> Built:
    env = env_list[0]
    idm_name = cfg.idm or DEFAULTS.get(env.spec.id, (None, None))[1]
    if idm_name is None:
        raise UsageError(f"no shipped IDM for {env.spec.id}; pass --idm")
    idm = InverseDynamics.from_pretrained(idm_name, action_space=space_json(env.action_space))
    if idm.config.frame_size != env.observation_space.shape[0]:
        raise UsageError(f"IDM {idm_name} reads {idm.config.frame_size}px frames; {env.spec.id} shows "
                         f"{env.observation_space.shape[0]}px")
    return DemoActionAgent(idm, len(env_list)), {"idm": str(idm_name)}, None


def _imitation_agent(cfg: RunAgentConfig, env_list: list) -> Built:
    env = env_list[0]
    env_id, frame_shape = env.spec.id, env.observation_space.shape
    model, idm_name, classifier_name = _defaults(cfg, env_id)
    sim = _simulator(model, env_id, frame_shape[0], cfg.device, cfg.precision)
    ids = {"model": str(model), "tokenizer": sim.tokenizer.fingerprint()}
    idm = InverseDynamics.from_pretrained(idm_name, action_space=space_json(env.action_space))
    if idm.config.frame_size != sim.frame_size:
        raise UsageError(f"IDM {idm_name} reads {idm.config.frame_size}px frames; world model {model} makes "
                         f"{sim.frame_size}px")
    cost = _cost(cfg, env_id, frame_shape, classifier_name, ids, cfg.mpc.cost == "classifier") \
        if cfg.imitation.pick == "cost" else None
    return ImitationAgent(sim, idm, cfg.imitation, cost, cfg.sampling), {**ids, "idm": str(idm_name)}, sim


def _planning_agent(cfg: RunAgentConfig, env_list: list, sim: VideoSimulator | None = None) -> Built:
    """MPC through the world model (``mpc``, ``guided``: ``sim`` if given) or the real simulator (``oracle``)."""
    env = env_list[0]
    env_id, frame_shape = env.spec.id, env.observation_space.shape
    if not isinstance(env.action_space, gym.spaces.Box):
        raise UsageError(f"--agent {cfg.agent} plans continuous actions; {env_id} has {env.action_space}")
    for name in ("std", "init_mean"):
        n = len(getattr(cfg.mpc, name))
        if n not in (1, env.action_space.shape[0]):
            raise UsageError(f"--{name.replace('_', '-')} has {n} values; {env_id}'s action has "
                             f"{env.action_space.shape[0]} components (give one value or one per component)")
    model, _, classifier_name = _defaults(cfg, env_id)
    if sim is None and (cfg.agent != "oracle" or cfg.demo):
        sim = _simulator(model, env_id, frame_shape[0], cfg.device, cfg.precision)
    ids = {"model": str(model), "tokenizer": sim.tokenizer.fingerprint()} if sim else {}
    picks_goal = cfg.demo is not None and cfg.imitation.n_candidates > 1 and classifier_name is not None
    # the classifier also keeps the likeliest of the imagined goals
    cost = _cost(cfg, env_id, frame_shape, classifier_name, ids, cfg.mpc.cost == "classifier" or picks_goal)
    goal_fn = None
    if cost.conditioned:  # the demo's end is the goal the classifier compares each frame with
        goal_fn = lambda demo, obs, seed: demo[-1]  # noqa: E731
    elif sim is not None:
        scorer = VideoCost("classifier", frame_shape, cost.classifiers) if cost.classifiers else None
        im = cfg.imitation
        goal_fn = lambda demo, obs, seed: goal_from_demo(  # noqa: E731
            sim, demo, obs, im.demo_frames, im.query_frames, im.gen_frames, im.n_candidates, scorer, seed, cfg.sampling)
    goal = _goal_image(cfg.goal, frame_shape) if cfg.goal is not None else None
    predictor = (ModelPredictor(sim, cfg.sampling) if cfg.agent != "oracle"
                 else EnvOracle(env_list, cfg.oracle_workers))
    return MPCAgent(predictor, cost, cfg.mpc, env.action_space, goal_fn=goal_fn, goal=goal), ids, sim


def _guided_agent(cfg: RunAgentConfig, env_list: list) -> Built:
    """MPC through the world model, its planner started from the imitation agent's plans (one world model)."""
    if cfg.demo is None:
        raise UsageError("--agent guided starts MPC from the imitation agent's plan for a demo: pass --demo")
    if not isinstance(env_list[0].action_space, gym.spaces.Box):  # before loading any model
        raise UsageError(f"--agent guided plans continuous actions; {env_list[0].spec.id} has {env_list[0].action_space}")
    proposer, ids, sim = _imitation_agent(cfg, env_list)
    mpc, mpc_ids, _ = _planning_agent(cfg, env_list, sim)
    return GuidedAgent(proposer, mpc), {**mpc_ids, **ids}, sim


# --agent NAME -> what builds it for a list of parallel env copies
AGENTS = {"imitate": _imitation_agent, "mpc": _planning_agent, "guided": _guided_agent, "oracle": _planning_agent,
          "random": _policy_agent, "expert": _policy_agent, "demo-actions": _demo_action_agent}


def make_agent(cfg: RunAgentConfig, env_list: list) -> Built:
    """The agent for ``env_list`` (parallel copies of one env), what identifies its models, and the world
    model it imagines with (None for baselines and the oracle without a demo)."""
    return AGENTS[cfg.agent](cfg, env_list)


def run_episodes(env_list: list, agent: Agent, demo: np.ndarray | None, seeds: list[int],
                 instances: list[int | None], stop_on_success: bool) -> tuple[list[dict], list[np.ndarray]]:
    """Episodes side by side, one per env; returns their metrics and side-by-side video frames."""
    start = time.perf_counter()
    first = [env.reset(seed=s, options=None if i is None else {"instance": i})
             for env, s, i in zip(env_list, seeds, instances)]
    obs, infos = [o for o, _ in first], [i for _, i in first]
    env_id = env_list[0].spec.id
    agent.reset(obs, demo, seeds, [info.get("goal") if env_id in GOAL_ENVS else None for info in infos])
    blank = np.zeros_like(obs[0])
    goals = [[g] if g is not None else [] for g in agent.goals]
    videos = [[np.concatenate([o, blank, *g], axis=1)] for o, g in zip(obs, goals)]
    rows = [{"seed": s, "instance": i, "success": False, "steps": 0, "return": 0.0} for s, i in zip(seeds, instances)]
    done = [False] * len(env_list)
    bar = tqdm(desc=f"{len(env_list)} episode(s)", unit="step", leave=False, disable=len(env_list) == 1)
    while not all(done):
        bar.update()
        active = [not d for d in done]
        actions = agent.act(obs, active)
        for k in (k for k in range(len(env_list)) if active[k]):
            obs[k], reward, terminated, truncated, info = env_list[k].step(actions[k])
            imagined = agent.predictions[k] if agent.predictions[k] is not None else blank
            videos[k].append(np.concatenate([obs[k], imagined, *goals[k]], axis=1))
            row = rows[k]
            row["return"] += float(reward)
            row["steps"] += 1
            row["success"] = row["success"] or bool(info.get("success", False))
            if "task_success" in info:
                row["task_success"] = dict(info["task_success"])
                for task, did in info["task_success"].items():  # the step each task was first done
                    if did:
                        row.setdefault("task_steps", {}).setdefault(task, row["steps"])
            if "distance" in info and np.isfinite(info["distance"]):  # distance to go (RoboDesk: hand to button, m)
                row.setdefault("distances", []).append(round(info["distance"], 4))
                row["final_distance"], row["min_distance"] = row["distances"][-1], min(row["distances"])
            if terminated or truncated or (stop_on_success and row["success"]):
                done[k] = True
                row["wall_s"] = round(time.perf_counter() - start, 2)
    bar.close()
    return rows, [np.stack(v) for v in videos]


def finished_run(cfg: RunAgentConfig) -> dict | None:
    """The metrics in ``cfg.out`` if a run with this config finished there (so benchmarks resume). A setting
    the saved config lacks (added to ``run_agent`` later) matches when ``cfg`` leaves it at its default; ``out``
    itself may differ (a moved or copied results folder still resumes)."""
    path = cfg.out / "metrics.json"
    if not path.is_file():
        return None
    saved = json.loads(path.read_text())
    config = config_json(cfg)
    differ = differences(saved.get("config", {}), config, {"out"}, defaults_json(type(cfg)), only=config,
                         retired=RETIRED)
    return None if differ else saved


# dB. Measured (first frames of 5 Crafter and 3 desk starts, every shipped demo): other-env demos reconstruct
# 17-28 dB below the env's first frame, its own demos up to 11.4 dB below (Crafter's walk_left, 22.6 vs 34 dB).
DEMO_PSNR_GAP = 15.0


def check_demo_env(sim: VideoSimulator, demo: np.ndarray, env, seed: int, name) -> None:
    """Refuse a demo of another env, told by the world model's tokenizer: such frames reconstruct far worse
    than the env's own (desk tokenizer: Crafter demos 6-8 dB, the desk's first frames 26 dB; Crafter tokenizer:
    desk demos 9 dB, its own 23-30 dB, first frames 27-34 dB)."""
    own = sim.reconstruction_psnr(env.reset(seed=seed)[0][None])
    theirs = sim.reconstruction_psnr(demo[-8:])
    if theirs < own - DEMO_PSNR_GAP:
        raise UsageError(f"{name}: does not look like {env.spec.id} (the world model's tokenizer reconstructs it at "
                         f"{theirs:.1f} dB, this env's frames at {own:.1f} dB); pass a demo recorded in this env")


def main(cfg: RunAgentConfig) -> dict:
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    env_list = [make_env(cfg) for _ in range(min(cfg.batch, cfg.episodes))]
    env_id = env_list[0].spec.id
    agent, ids, sim = make_agent(cfg, env_list)
    demo = None
    if cfg.demo is not None:
        size = sim.frame_size if sim else env_list[0].observation_space.shape[0]
        demo = load_demo(cfg.demo, size, sim.config.get("fps") if sim else None, cfg.imitation.demo_length if sim else 2)
        if sim is not None:
            check_demo_env(sim, demo, env_list[0], cfg.seed, cfg.demo)
    elif cfg.agent == "imitate":
        print("run_agent: no --demo, so the world model continues the query alone")
    elif cfg.agent == "demo-actions":
        raise UsageError("--agent demo-actions draws the demo's actions: pass --demo")
    cfg.out.mkdir(parents=True, exist_ok=True)
    rows, start = [], time.perf_counter()
    fps = env_list[0].metadata.get("render_fps") or 10
    with tqdm(total=cfg.episodes, desc=f"run_agent {cfg.agent}", unit="ep") as bar:
        for first in range(0, cfg.episodes, len(env_list)):
            n = min(len(env_list), cfg.episodes - first)
            index = list(range(first, first + n))
            instances = [(cfg.instance + i) % INSTANCES if env_id in INSTANCE_ENVS else None for i in index]
            group, videos = run_episodes(env_list[:n], agent, demo, [cfg.seed + i for i in index], instances,
                                         cfg.stop_on_success)
            for i, row, frames in zip(index, group, videos):
                video = write(cfg.out / f"episode_{i:03d}.mp4", frames.repeat(SCALE, axis=1).repeat(SCALE, axis=2),
                              fps=fps)
                rows.append({"episode": i, **row, "video": video.name})
            bar.update(n)
    for env in env_list:
        env.close()
    agent.close()
    n = len(rows)
    summary = {"episodes": n, "success_rate": sum(r["success"] for r in rows) / n,
               "mean_steps": float(np.mean([r["steps"] for r in rows])),
               "mean_return": float(np.mean([r["return"] for r in rows])),
               "mean_wall_s": float(np.mean([r["wall_s"] for r in rows])),
               "total_wall_s": round(time.perf_counter() - start, 2)}
    if agent.plan_seconds:
        summary["mean_plan_s"] = round(float(np.mean(agent.plan_seconds)), 3)
    write_json(cfg.out / "metrics.json", {"env": env_id, "agent": cfg.agent, "demo": cfg.demo, **ids,
                                          "summary": summary, "episodes": rows,
                                          "config": config_json(cfg)})
    print(f"{cfg.out}: {cfg.agent} on {env_id}, demo {cfg.demo or 'none'}: success "
          f"{sum(r['success'] for r in rows)}/{n} ({summary['success_rate']:.0%}), {summary['mean_steps']:.1f} steps, "
          f"return {summary['mean_return']:.2f}, {summary['total_wall_s']:.1f} s in all")
    return summary


def cli() -> None:
    run(main, RunAgentConfig)


if __name__ == "__main__":
    cli()
