"""``demo_bench``: the which-task benchmark. Does the demo decide what the agent does?

    demo_bench --env crafter --out results/demo_bench_crafter --workers 2     # 8 tasks x 50 seeds x 6 settings
    demo_bench --env robodesk --out results/demo_bench_robodesk --workers 2   # the agents' recipe: the model's preset
    demo_bench --env robodesk --settings imitate expert --tasks push_red push_green --instances 10
    demo_bench --env robodesk --settings imitate --preset vp2   # the papers' settings (VidIT: one imagined future)
    demo_bench --env crafter --quick --out results/demo_bench_quick            # 2 tasks, 2 seeds, 20 steps: minutes

One env (``vidit/RoboDesk-v0`` or ``vidit/Crafter-v0``) holds several tasks; agents never read which one
the env scores, so only the demo can tell them. For every demo task T (a row; ``--tasks``, default all
the env's tasks) each setting runs episodes with the env's ``task=T``:

* ``imitate``: the imitation agent (world model + IDM) with T's shipped demo (``T.mp4``);
* ``mpc-demo``: the MPC agent with T's demo (RoboDesk only: it plans continuous actions);
* ``guided``: that MPC agent started from the imitation agent's plans for T's demo (RoboDesk only);
* ``no-demo``: the imitation agent without a demo; ``random-demo``: with a random policy's shipped clip
  (``push_red_random.mp4``, ``crafter_random.mp4``); ``random``: the random policy. These do not
  depend on T, so one episode per start (run with the env's first task) serves every row: the row is
  still T, scored from the same episode's ``task_success``, so they line up with the expert's;
* ``demo-actions``: no world model: each action is drawn from T's demo's action frequencies, as the IDM
  reads them (the control that tells what the world model adds);
* ``expert``: the scripted expert of T (it reads the task: an upper bound).

Episodes: RoboDesk on the benchmark instances 0..N-1 (``--instances``, default 30), Crafter on starts
0..N-1 (``--seeds``, default 50); ``--held-out`` runs development episodes instead, to tune on (RoboDesk's
held-out instances 30.., Crafter seeds 1000..), with the env's whole step budget (``--steps``: RoboDesk 15, Crafter
100) and ``stop_on_success=False``, so an episode shows every task done in it (a wrong button pressed
after the right one counts too). Each episode is one ``run_agent`` run with ``--seed s`` (s: the
instance or start), under ``--out/runs/<setting>/<T>/{instance<s>,seed<s>}/`` with its mp4 and
``metrics.json``: every row and setting meets the same starts (on Crafter the seed is also the world),
so rows differ only by their demo, and an agent that ignores the demo does the same in every row
(``run_agent --env crafter --task walk_left --seed 7 --max-steps 100 --no-stop-on-success --demo
walk_left.mp4`` replays walk_left's start 7). A rerun skips finished episodes (a killed benchmark continues); ``--out`` remembers its
configuration (``bench_config.json``) and refuses another, except for which episodes run
(``--settings``, ``--tasks``, ``--seeds``, ``--instances``: a benchmark grows or reports a subset).

Counting: an episode "did" the tasks whose ``task_success`` is True at its end. The confusion matrix of
a setting has a row per demo task and a column per env task plus ``none`` (no task done); a cell is the
share of the row's episodes that did the column's task. An episode that did several tasks counts in
each of their columns, so a row may sum to more than 1. Per row, ``own`` (the diagonal) and ``other``
(some other task done); per setting, ``diagonal`` (the mean of the rows' own rates) with a 95% Wilson
interval over all the setting's episodes pooled, ``other_demos`` (how often a task is done when the demo
shows another one: the off-diagonal mean of its column, averaged over tasks), ``demo_gain`` (diagonal minus
other_demos: what the demo's content adds; 0 for an agent that ignores the demo), ``wrong_task`` (share of
episodes doing some task other than their row's), ``wrong_first`` (those of them that did it no later than
their row's task, or without it: what stopping at the first success would leave) and ``none``. Writes ``demo_bench.{md,csv,json}`` (the summary; the md and json
also hold every matrix), ``confusion_<setting>.{md,csv,json}`` and ``demo_bench.png`` (a heatmap per
setting).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Literal, Optional

import numpy as np

from agents.imitation import ImitationConfig
from agents.mpc import RETIRED, MPCConfig
from agents.run_agent import DEFAULTS, RunAgentConfig, finished_run
from envs.demos import resolve_demo
from experiments.episodes import EXECUTOR_FLAGS, ExecutorConfig, run_all
from experiments.imitation_bench import wilson
from experiments.tables import figure, write_table
from vidit.cli import UsageError, build, config_json, defaults_json, flatten, run
from vidit.files import atomic_write_bytes
from vidit.runs import claim_out
from worldmodel.precision import Precision, device_field, precision_field
from worldmodel.sampling import SamplingConfig

SETTINGS = ("imitate", "mpc-demo", "guided", "no-demo", "random-demo", "demo-actions", "random", "expert")
ENVS = {"robodesk": "vidit/RoboDesk-v0", "crafter": "vidit/Crafter-v0"}
BUDGET = {"robodesk": 15, "crafter": 100}  # the registered step budgets
QUICK_STEPS = {"robodesk": 3, "crafter": 20}
RANDOM_DEMO = {"robodesk": "push_red_random.mp4", "crafter": "crafter_random.mp4"}
CONTINUOUS = ("robodesk",)  # envs whose actions MPC can plan
PLANNED = ("mpc-demo", "guided")  # the settings that plan with MPC
MODEL_SETTINGS = ("imitate", "mpc-demo", "guided", "no-demo", "random-demo")
# Settings blind to the row's task (no demo of it): one episode per start serves every row, since agents never
# read the env's task and every episode scores all tasks (tests/test_task_blind.py holds the first).
TASK_BLIND = ("no-demo", "random-demo", "random")
NONE = "none"
# Flags that change how fast a run goes, not what it measures: a resumed benchmark may change them.
VOLATILE = {"out", "workers", "threads", "device", *EXECUTOR_FLAGS}
# Which episodes to run: each episode's folder checks its own config, so a benchmark grows or reports a subset.
EPISODES = frozenset({"settings", "tasks", "seeds", "instances"})
EPISODE_SEED = "start"


def env_tasks(env: str) -> tuple[str, ...]:
    """The tasks ``env`` scores, in their fixed order."""
    if env == "robodesk":
        from envs.robodesk import TASKS
    else:
        from envs.crafter import TASKS
    return tuple(TASKS)


@dataclass
class _BenchSettings:
    env: Literal["robodesk", "crafter"] = field(default="robodesk", metadata={
        "help": "robodesk (vidit/RoboDesk-v0: push_red, push_green, push_blue) or crafter (vidit/Crafter-v0)"})
    out: Path = field(default=Path("results/demo_bench"), metadata={"help": "output folder (one env per folder)"})
    settings: Optional[tuple[str, ...]] = field(default=None, metadata={
        "help": f"which agents to run: {', '.join(SETTINGS)} (none: all the env allows but guided; mpc-demo and guided are RoboDesk only)"})
    tasks: Optional[tuple[str, ...]] = field(default=None, metadata={
        "help": "demo tasks, one row each (none: all the env's tasks)"})
    instances: Optional[int] = field(default=None, metadata={
        "help": "RoboDesk: benchmark instances 0..N-1 per task (none: 30)"})
    seeds: Optional[int] = field(default=None, metadata={"help": "Crafter: starts 0..N-1 per task (none: 50)"})
    held_out: bool = field(default=False, metadata={
        "help": "development episodes, to tune on: RoboDesk's held-out instances 30.. (the shipped demos come from "
                "instance 45), Crafter seeds 1000.. (none of the benchmark's)"})
    steps: Optional[int] = field(default=None, metadata={
        "help": "control steps per episode, always all of them (none: the env's budget, RoboDesk 15, Crafter 100)"})
    model: Optional[str] = field(default=None, metadata={
        "help": "world model folder or shipped name (none: the env's)"})
    idm: Optional[str] = field(default=None, metadata={"help": "IDM folder or shipped name (none: the env's)"})
    workers: int = field(default=1, metadata={"help": "episodes run in parallel processes"})
    threads: int = field(default=1, metadata={"help": "torch CPU threads per worker"})
    device: str = device_field()
    precision: Precision = precision_field()
    quick: bool = field(default=False, metadata={
        "help": "2 tasks, 2 instances/seeds, 3 steps (RoboDesk) or 20 (Crafter), MPC 8 samples of horizon 2"})
    sampling: SamplingConfig = field(default_factory=SamplingConfig, metadata={"help": "how the world model samples"})
    imitation: ImitationConfig = field(default_factory=ImitationConfig, metadata={
        "help": "the imitation agent of the imitation settings (without a demo it picks by the IDM)"})
    run_on: ExecutorConfig = field(default_factory=ExecutorConfig, metadata={"help": "where the episodes run"})


@dataclass
class DemoBenchConfig(MPCConfig, _BenchSettings):
    """Which task does the agent do? A confusion matrix of demo task vs tasks done, per agent setting."""

    @classmethod
    def preset_model(cls, values: dict) -> Path | None:
        """The agents' recipe comes from the env's world model (whichever settings run, so a benchmark that
        grows by settings keeps its configuration)."""
        from worldmodel.simulator import resolve_model
        env = values.get("env") or "robodesk"
        try:
            return resolve_model(values.get("model") or DEFAULTS[ENVS[env]][0])
        except FileNotFoundError:
            return None  # the inputs' check names the missing model

    def __post_init__(self):
        MPCConfig.__post_init__(self)
        known = env_tasks(self.env)
        allowed = tuple(s for s in SETTINGS if s not in PLANNED or self.env in CONTINUOUS)
        if self.settings is None:  # guided is opt-in: not yet measured on the development episodes
            self.settings = tuple(s for s in allowed if s != "guided")
        unknown = sorted(set(self.settings) - set(SETTINGS))
        if unknown:
            raise UsageError(f"unknown settings {unknown}; known: {', '.join(SETTINGS)}")
        if set(self.settings) - set(allowed):
            raise UsageError(f"--settings {' and '.join(PLANNED)} plan continuous actions; {ENVS[self.env]} has discrete ones "
                             f"(settings for {self.env}: {', '.join(allowed)})")
        self.settings = tuple(dict.fromkeys(self.settings))
        self.tasks = tuple(dict.fromkeys(self.tasks)) if self.tasks is not None else known
        unknown = sorted(set(self.tasks) - set(known))
        if unknown or not self.tasks:
            raise UsageError(f"unknown tasks {unknown} for --env {self.env}; known: {', '.join(known)}")
        other = {"robodesk": "seeds", "crafter": "instances"}[self.env]
        if getattr(self, other) is not None:
            mine = {"robodesk": "--instances", "crafter": "--seeds"}[self.env]
            raise UsageError(f"--{other} is not for --env {self.env}; it picks its episodes with {mine}")
        if self.env == "robodesk":
            self.instances = 30 if self.instances is None else self.instances
            if not 1 <= self.instances <= 30:
                raise UsageError(f"--instances must lie in [1, 30] (30 benchmark and 30 held-out instances), "
                                 f"got {self.instances}")
        else:
            self.seeds = 50 if self.seeds is None else self.seeds
            if self.seeds < 1:
                raise UsageError(f"--seeds must be >= 1, got {self.seeds}")
        self.steps = BUDGET[self.env] if self.steps is None else self.steps
        if self.workers < 1 or self.threads < 1 or self.steps < 1:
            raise UsageError("--workers, --threads and --steps must be >= 1")
        if self.quick:
            self.tasks = self.tasks[:2]
            if self.env == "robodesk":
                self.instances = min(self.instances, 2)
            else:
                self.seeds = min(self.seeds, 2)
            self.steps = min(self.steps, QUICK_STEPS[self.env])
            self.samples, self.horizon = min(self.samples, 8), min(self.horizon, 2)

    @property
    def starts(self) -> range:
        """The instances (RoboDesk) or starts (Crafter) every task row runs."""
        n, first = (self.instances, 30) if self.env == "robodesk" else (self.seeds, 1000)
        return range(first, first + n) if self.held_out else range(n)


def episode_configs(cfg: DemoBenchConfig) -> list[tuple[str, str, int, RunAgentConfig]]:
    """(setting, demo task, start, run_agent config) of every episode."""
    planner = {f.name: getattr(cfg, f.name) for f in fields(MPCConfig)}
    out = []
    for start in cfg.starts:  # start-major: a run stopped early has every row of the starts it reached
        for setting in cfg.settings:
            for task in cfg.tasks:
                run_task = env_tasks(cfg.env)[0] if setting in TASK_BLIND else task
                demo = {"imitate": f"{task}.mp4", "mpc-demo": f"{task}.mp4", "guided": f"{task}.mp4",
                        "demo-actions": f"{task}.mp4",
                        "random-demo": RANDOM_DEMO[cfg.env]}.get(setting)
                agent = {"mpc-demo": "mpc", "guided": "guided", "random": "random", "expert": "expert",
                         "demo-actions": "demo-actions"}.get(setting, "imitate")
                imitation = flatten(cfg.imitation) if agent in ("imitate", "guided") else {}
                name = f"instance{start:02d}" if cfg.env == "robodesk" else f"seed{start}"
                out.append((setting, task, start, build(RunAgentConfig, {
                    **planner, "env": ENVS[cfg.env], "task": run_task, "demo": demo, "agent": agent, "episodes": 1,
                    "seed": start, "instance": start if cfg.env == "robodesk" else 0,
                    "model": cfg.model, "idm": cfg.idm, **imitation, **flatten(cfg.sampling),
                    "max_steps": cfg.steps, "stop_on_success": False, "threads": cfg.threads, "device": cfg.device,
                    "precision": cfg.precision,
                    "out": cfg.out / "runs" / setting / run_task / name})))
    return out


def tasks_done(metrics: dict) -> dict[str, int | None]:
    """The tasks an episode did (those its env scored True at the end, ``task_success``), each with the
    step it was first done (None where the run did not record it)."""
    row = metrics["episodes"][0]
    steps = row.get("task_steps", {})
    return {task: steps.get(task) for task, done in row.get("task_success", {}).items() if done}


def wrong_first(task: str, done: dict[str, int | None]) -> bool | None:
    """Whether an episode of demo ``task`` did another task no later than ``task`` (or without it): a wrong
    press that stopping at the first success would not have prevented (None: steps not recorded)."""
    others = [step for t, step in done.items() if t != task]
    if not others or task not in done:
        return bool(others)
    if done[task] is None or None in others:
        return None
    return min(others) <= done[task]


def _check_inputs(cfg: DemoBenchConfig) -> None:
    """Models and demos the settings need exist: a wrong one fails here, before ``--out`` is touched."""
    from idm.model import resolve as resolve_idm
    from worldmodel.classifier import load_classifiers
    from worldmodel.simulator import resolve_model
    shipped = DEFAULTS[ENVS[cfg.env]]
    uses = set(cfg.settings) & set(MODEL_SETTINGS)
    try:
        if uses:
            model = resolve_model(cfg.model or shipped[0])
            trained_on = json.loads((model / "config.json").read_text()).get("env_id")
            if trained_on and trained_on != ENVS[cfg.env]:
                raise UsageError(f"world model {cfg.model or shipped[0]} was trained on {trained_on}, "
                                 f"not {ENVS[cfg.env]}")
        if uses - {"mpc-demo"} or "demo-actions" in cfg.settings:
            resolve_idm(cfg.idm or shipped[1])
        if set(PLANNED) & set(cfg.settings) and (cfg.cost == "classifier" or cfg.classifier is not None):
            if cfg.classifier is None and shipped[2] is None:
                raise UsageError(f"no shipped success classifier for {ENVS[cfg.env]}; pass --classifier or --cost mse")
            load_classifiers(cfg.classifier or shipped[2])
        for demo in sorted({c.demo for *_, c in episode_configs(cfg) if c.demo is not None}):
            resolve_demo(demo)
    except (FileNotFoundError, ValueError) as e:  # VideoError is a ValueError: all one line
        raise UsageError(str(e)) from None


def main(cfg: DemoBenchConfig) -> list[dict]:
    _check_inputs(cfg)
    config = {k: v for k, v in config_json(cfg).items() if k not in VOLATILE}
    claim_out(cfg.out, {**config, "episode_seed": EPISODE_SEED}, EPISODES, defaults_json(DemoBenchConfig), RETIRED)
    jobs = episode_configs(cfg)
    run_all(list({job[3].out: job[3] for job in jobs}.values()), cfg.workers, "demo_bench", cfg.run_on)
    results = {(s, t, i): tasks_done(finished_run(c)) for s, t, i, c in jobs}
    rows, matrices = summarize(results, cfg.settings, cfg.tasks, env_tasks(cfg.env))
    meta = {"config": config_json(cfg), "confusion": matrices}
    keys = ["setting", "episodes", "diagonal", "ci_low", "ci_high", "other_demos", "demo_gain", "wrong_task",
            "wrong_first", "none"]
    write_table(cfg.out, "demo_bench", rows, keys, meta)
    columns = ["demo_task", "episodes", *env_tasks(cfg.env), NONE, "own", "other"]
    sections = []
    for setting, matrix in matrices.items():
        write_table(cfg.out, f"confusion_{setting}", matrix, columns, {"setting": setting})
        sections += ["", f"### {setting}", "", "| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
        sections += ["| " + " | ".join(str(r[k]) for k in columns) + " |" for r in matrix]
    md = cfg.out / "demo_bench.md"
    note = ("", "Confusion matrices: row = demo task, cell = share of the row's episodes that did the column's task "
                "(an episode doing several tasks counts in each column, so a row may sum to more than 1); "
                "own = the diagonal, other = some other task done.")
    atomic_write_bytes(md, (md.read_text() + "\n".join(note + tuple(sections)) + "\n").encode())
    _plot(matrices, env_tasks(cfg.env), cfg.out / "demo_bench.png")
    print(md.read_text())
    return rows


def confusion(results: dict[tuple[str, str, int], dict], setting: str, tasks: tuple[str, ...],
              columns: tuple[str, ...]) -> list[dict]:
    """A row per demo task: the share of its episodes that did each task of ``columns`` (several count in
    each), that did none, its own task (``own``) and some other task (``other``)."""
    matrix = []
    for task in tasks:
        eps = [done for (s, t, _), done in results.items() if s == setting and t == task]
        n = len(eps)
        row = {"demo_task": task, "episodes": n}
        row.update({c: round(sum(c in d for d in eps) / n, 3) for c in columns})
        row[NONE] = round(sum(not d for d in eps) / n, 3)
        row["own"] = row[task]
        row["other"] = round(sum(bool(set(d) - {task}) for d in eps) / n, 3)
        matrix.append(row)
    return matrix


def summarize(results: dict[tuple[str, str, int], dict], settings: tuple[str, ...], tasks: tuple[str, ...],
              columns: tuple[str, ...]) -> tuple[list[dict], dict[str, list[dict]]]:
    """Per setting a summary row (diagonal with its 95% Wilson interval over the pooled episodes; ``other_demos``,
    the mean rate of doing a task when the demo shows another; ``demo_gain``, the diagonal minus that; wrong-task
    rate, ``wrong_first``, the share with a wrong task done no later than the demo's (see :func:`wrong_first`;
    None where steps were not recorded), and none) and its confusion matrix, from
    ``results[(setting, demo task, start)]`` = {task done: first step} (:func:`tasks_done`)."""
    rows, matrices = [], {}
    for setting in settings:
        eps = [(t, done) for (s, t, _), done in results.items() if s == setting and t in tasks]
        if not eps:
            continue
        present = tuple(t for t in tasks if any(task == t for task, _ in eps))
        matrices[setting] = confusion(results, setting, present, columns)
        own = [np.mean([t in done for task, done in eps if task == t]) for t in present]
        n = len(eps)
        low, high = wilson(sum(t in done for t, done in eps), n)
        # how often a task is done when the demo shows another one: the diagonal's baseline within the setting
        others = [np.mean([r[t] for r in matrices[setting] if r["demo_task"] != t]) for t in present] \
            if len(present) > 1 else [np.nan]
        rows.append({"setting": setting, "episodes": n, "diagonal": round(float(np.mean(own)), 3),
                     "ci_low": round(low, 3), "ci_high": round(high, 3),
                     "other_demos": round(float(np.mean(others)), 3),
                     "demo_gain": round(float(np.mean(own) - np.mean(others)), 3),
                     "wrong_task": round(sum(bool(set(done) - {t}) for t, done in eps) / n, 3),
                     "wrong_first": None if None in (first := [wrong_first(t, done) for t, done in eps])
                     else round(sum(first) / n, 3),
                     "none": round(sum(not done for _, done in eps) / n, 3)})
    return rows, matrices


def _plot(matrices: dict[str, list[dict]], columns: tuple[str, ...], path: Path) -> None:
    """A heatmap per setting (three to a line), the diagonal outlined."""
    from matplotlib.patches import Rectangle
    cols = [*columns, NONE]
    ncols = min(3, len(matrices))
    nrows = -(-len(matrices) // ncols)
    size = (1.6 + 0.42 * len(cols), 1.9 + 0.38 * max(len(m) for m in matrices.values()))
    with figure(path, nrows, ncols, figsize=(size[0] * ncols, size[1] * nrows)) as (fig, axes):
        for ax in axes.flat[len(matrices):]:
            ax.set_axis_off()
        for ax, (setting, matrix) in zip(axes.flat, matrices.items()):
            values = np.array([[r[c] for c in cols] for r in matrix])
            ax.imshow(values, vmin=0, vmax=1, cmap="viridis", aspect="auto")
            for i, j in np.ndindex(values.shape):
                ax.text(j, i, f"{values[i, j]:.2f}", ha="center", va="center", fontsize=6,
                        color="black" if values[i, j] > 0.6 else "white")
            for i, r in enumerate(matrix):  # the demo's own task
                j = cols.index(r["demo_task"])
                ax.add_patch(Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, edgecolor="red", lw=1.5))
            ax.set_xticks(range(len(cols)), cols, rotation=45, ha="right", fontsize=7)
            ax.set_yticks(range(len(matrix)), [r["demo_task"] for r in matrix], fontsize=7)
            ax.set_xlabel("task done (red: the demo's)", fontsize=8)
            ax.set_ylabel("demo task", fontsize=8)
            ax.set_title(f"{setting} ({sum(r['episodes'] for r in matrix)} episodes)", fontsize=9)


def cli() -> None:
    run(main, DemoBenchConfig)


if __name__ == "__main__":
    cli()
