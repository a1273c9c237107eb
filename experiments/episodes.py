"""Benchmark episodes as ``run_agent`` runs: one folder each, skipped when already finished (so a killed
benchmark resumes), run in turn or in spawn worker processes."""
from __future__ import annotations

import json
import multiprocessing as mp
from typing import Sequence

from tqdm import tqdm

from agents.run_agent import RunAgentConfig, finished_run
from agents.run_agent import main as run_agent


def run_episode(run_cfg: RunAgentConfig) -> dict:
    """One episode (in a worker process or a cluster task); returns its metrics."""
    return finished_run(run_cfg) or (run_agent(run_cfg), json.loads((run_cfg.out / "metrics.json").read_text()))[1]


def run_all(configs: Sequence[RunAgentConfig], workers: int, name: str) -> None:
    """Run every unfinished episode of ``configs`` with ``workers`` processes, printing what is left."""
    todo = [c for c in configs if finished_run(c) is None]
    print(f"{name}: {len(configs)} episodes, {len(configs) - len(todo)} already done, {len(todo)} to run "
          f"with {workers} worker(s)")
    with tqdm(total=len(todo), desc=name, unit="ep") as bar:
        if workers == 1:
            for run_cfg in todo:
                run_episode(run_cfg)
                bar.update()
        else:
            with mp.get_context("spawn").Pool(workers) as pool:
                for _ in pool.imap_unordered(run_episode, todo):
                    bar.update()
                pool.close()  # let workers exit on their own: terminating them leaks their tqdm semaphore
                pool.join()
