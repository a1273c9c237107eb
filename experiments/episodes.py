"""Benchmark episodes as ``run_agent`` runs: one folder each, skipped when already finished (so a killed
benchmark resumes), run in turn, in spawn worker processes, or as Ray tasks (``--executor ray``, on this
machine or a cluster's ``--address``)."""
from __future__ import annotations

import json
import multiprocessing as mp
import os
from dataclasses import dataclass, field
from typing import Literal, Optional, Sequence

from tqdm import tqdm

from agents.run_agent import RunAgentConfig, finished_run
from agents.run_agent import main as run_agent
from vidit.cli import UsageError

EXECUTOR_FLAGS = {"executor", "address"}  # where episodes run: never what they measure


@dataclass
class ExecutorConfig:
    executor: Literal["local", "ray"] = field(default="local", metadata={
        "help": "local: --workers processes on this machine; ray: one Ray task per episode (pip install 'vidit[ray]')"})
    address: Optional[str] = field(default=None, metadata={
        "help": "ray: the cluster to join (e.g. ray://head:10001 or auto); none: start Ray here with --workers CPUs"})

    def __post_init__(self):
        if self.executor == "ray":
            try:
                import ray  # noqa: F401  (checked here, before a benchmark touches its --out)
            except ImportError:
                raise UsageError("--executor ray needs Ray: pip install 'vidit[ray]'") from None
        elif self.address:
            raise UsageError("--address is for --executor ray")


def run_episode(run_cfg: RunAgentConfig) -> dict:
    """One episode (in a worker process or a cluster task); returns its metrics."""
    return finished_run(run_cfg) or (run_agent(run_cfg), json.loads((run_cfg.out / "metrics.json").read_text()))[1]


def run_all(configs: Sequence[RunAgentConfig], workers: int, name: str,
            executor: ExecutorConfig = ExecutorConfig()) -> None:
    """Run every unfinished episode of ``configs`` with ``workers`` processes (or Ray tasks), printing what is left."""
    todo = [c for c in configs if finished_run(c) is None]
    where = f"{workers} worker(s)" if executor.executor == "local" else (
        f"Ray at {executor.address}" if executor.address else f"Ray tasks on {workers} CPU(s)")
    print(f"{name}: {len(configs)} episodes, {len(configs) - len(todo)} already done, {len(todo)} to run with {where}")
    with tqdm(total=len(todo), desc=name, unit="ep") as bar:
        if executor.executor == "ray":
            _run_on_ray(todo, workers, executor.address, bar)
        elif workers == 1:
            for run_cfg in todo:
                run_episode(run_cfg)
                bar.update()
        else:
            with mp.get_context("spawn").Pool(workers) as pool:
                for _ in pool.imap_unordered(run_episode, todo):
                    bar.update()
                pool.close()  # let workers exit on their own: terminating them leaks their tqdm semaphore
                pool.join()


def _run_on_ray(todo: Sequence[RunAgentConfig], workers: int, address: str | None, bar: tqdm) -> None:
    """Each episode a Ray task of one CPU; it writes its own folder, so a killed run resumes as a local one does.
    A cluster's nodes need vidit installed and the ``--out`` folder shared (e.g. NFS)."""
    import ray

    if not todo:
        return
    started = not ray.is_initialized()
    if started:
        if not address:  # Ray nices its workers to 15: episodes are this run's work, not background jobs
            os.environ.setdefault("RAY_worker_niceness", "0")
        ray.init(address=address, num_cpus=None if address else workers, include_dashboard=False,
                 log_to_driver=False)
    try:
        task = ray.remote(num_cpus=1)(run_episode)
        pending = [task.remote(c) for c in todo]
        while pending:
            done, pending = ray.wait(pending)
            ray.get(done)  # a failed episode raises here
            bar.update(len(done))
    finally:
        if started:
            ray.shutdown()
