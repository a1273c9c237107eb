"""``report``: every benchmark's table and plot in one page, ``docs/results.md``.

    python -m experiments.report --results results --out docs

Reads what the benchmarks wrote under ``--results/<name>/`` (``<name>.json`` + ``.png``), and writes
``--out/results.md`` with, per benchmark: the command that reproduces it (rebuilt from its saved
config: the flags that differ from the defaults), the date and machine it was measured on, its table,
and its plot (copied next to the page as ``<name>.png``). It opens with the hashes of the shipped
models the numbers came from. Results folders are not committed, so the page already there is the record:
a benchmark with no results under ``--results`` keeps its section, and one of several runs (a subsection
each) keeps the runs of it that are not there now; rerunning one run on a fresh machine updates only its
subsection. A benchmark never run is listed with its command.
"""
from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

from experiments.cost_ranking import CostRankingConfig
from experiments.demo_bench import DemoBenchConfig
from experiments.env_speed import SpeedConfig as EnvSpeedConfig
from experiments.expert_success import ExpertSuccessConfig
from experiments.imitation_bench import ImitationBenchConfig
from experiments.mpc_bench import MPCBenchConfig
from experiments.rl_imagination import RLImaginationConfig
from experiments.scaling import ScalingConfig
from experiments.speed_bench import SpeedConfig as ImagineSpeedConfig
from experiments.tables import weights_digest
from experiments.wm_eval import WMEvalConfig
from vidit.cli import UsageError, build, config_json, defaults_json, leaves, run
from vidit.files import atomic_write_bytes

ROOT = Path(__file__).resolve().parent.parent
# name -> (title, config class, what it shows), in the page's order.
BENCHMARKS = {
    "wm_eval": ("Open loop: the paper's Table 1 on our domains", WMEvalConfig,
                "Visual quality of 4 generated frames and probe accuracy (P-Acc) per demonstration type."),
    "imitation_bench": ("Closed loop: the imitation agent", ImitationBenchConfig,
                        "Success rate with 95% Wilson intervals per demonstration type, beside random and expert."),
    "scaling": ("Scaling: decoder size", ScalingConfig,
                "Held-out loss, PSNR and P-Acc against decoder parameters, same data and recipe."),
    "rl_imagination": ("RL in imagination: PPO inside the world model", RLImaginationConfig,
                       "PPO trained in the push_red world model vs in the real env for the same wall clock, "
                       "both scored in the real env."),
    "cost_ranking": ("MPC costs: do they rank sampled futures by real progress?", CostRankingConfig,
                     "Spearman's rho between each cost and the real distance left to the button, on real and "
                     "on predicted frames of the same samples; progress (cm) of the 4 samples each cost likes best."),
    "mpc_bench": ("MPC: VP²'s push_red protocol", MPCBenchConfig,
                  "Success of MPPI over world-model rollouts (mpc; mpc-demo: goal imagined from a demo) or the "
                  "real simulator (oracle), and of the random and scripted policies, beside VP²'s published numbers."),
    "demo_bench": ("Which task? Does the demo decide what the agent does", DemoBenchConfig,
                   "Per agent setting, a confusion matrix of the demo's task against the tasks done in the episode; "
                   "the diagonal with a 95% Wilson interval, the wrong-task and no-task rates."),
    "expert_success": ("Scripted experts and the random policy", ExpertSuccessConfig,
                       "Success of the scripted experts (at several noise levels) and of random actions."),
    "env_speed": ("Env speed", EnvSpeedConfig,
                  "Control steps per second of the real envs and of `collect`, per render setting."),
    "speed": ("Imagination speed", ImagineSpeedConfig,
              "The world model's sampler against `transformers`' `generate`, the shared-prefix rollout against "
              "per-sample generation, the decoder's share of the machine's matmul FLOP/s, and one MPC planning "
              "call (rollouts, pixels, cost) by today's float32 path and the bfloat16 fast path."),
}
SHIPPED = ("worldmodel/models", "idm/models", "worldmodel/classifiers")
CONSOLE_SCRIPTS = ("wm_eval", "imitation_bench", "rl_imagination", "mpc_bench", "demo_bench", "expert_success", "env_speed")
# Tables not named after their module or default --out folder; the others run with python -m, from results/<name>/.
MODULES = {"speed": "speed_bench"}
FOLDERS = {"expert_success": "experts", "demo_bench": "demo_bench*", "speed": "speed*", "mpc_bench": "mpc_bench*"}  # a glob: a subsection a run


@dataclass
class ReportConfig:
    """Gather every benchmark's table and plot into one markdown page."""
    results: Path = field(default=Path("results"), metadata={"help": "folder holding <benchmark>/ outputs"})
    out: Path = field(default=Path("docs"), metadata={"help": "where results.md and the plots go"})

    def __post_init__(self):
        if not self.results.is_dir():
            raise UsageError(f"--results {self.results}: no such folder (run the benchmarks first)")


def command(name: str, cls: type, saved: dict) -> str:
    """The shell-quoted command line that reproduces a saved config: the flags that differ from the defaults,
    less those the others imply (a value ``__post_init__`` derives, e.g. Crafter's step budget from ``--env``)."""
    parts, defaults = [name], defaults_json(cls)
    keys = [k for k in leaves(cls) if k in saved and json.loads(json.dumps(saved[k], default=str)) != defaults[k]]
    for k in list(keys):
        try:
            implied = config_json(build(cls, {j: saved[j] for j in keys if j != k})).get(k)
        except Exception:  # noqa: BLE001 (JSON values a config cannot take back, e.g. a path as str): keep the flag
            continue
        if implied == json.loads(json.dumps(saved[k], default=str)):
            keys.remove(k)
    for name in keys:
        value = saved[name]
        flag = "--" + name.replace("_", "-")
        if isinstance(value, bool):
            parts.append(flag if value else "")
        elif isinstance(value, list):
            parts.append(f"{flag} " + " ".join(shlex.quote(str(v)) for v in value))
        else:
            parts.append(f"{flag} {shlex.quote(str(value))}")
    return " ".join(p for p in parts if p)


def model_hashes() -> list[str]:
    """``| model | sha256 |`` rows of every shipped model (the hash the benchmarks' JSON files record)."""
    return [f"| `{model.relative_to(ROOT)}` | `{weights_digest(model)}` |"
            for folder in SHIPPED for model in sorted((ROOT / folder).iterdir()) if (model / "config.json").is_file()]


def old_sections(page: Path) -> dict[str, list[str]]:
    """The ``## title`` sections of an existing page, by title."""
    sections: dict[str, list[str]] = {}
    title = None
    for line in page.read_text().splitlines() if page.is_file() else []:
        if line.startswith("## "):
            title = line[3:]
            sections[title] = []
        if title is not None:
            sections[title].append(line)
    return sections


def demoted(lines: list[str]) -> list[str]:
    """A run's markdown as a subsection: its own ``### `` headings one level down."""
    return ["#" + line if line.startswith("### ") else line for line in lines]


def old_runs(name: str, lines: list[str]) -> dict[str, list[str]]:
    """The runs of an old section (its ``## title``, blank, description, blank lines first), by folder name, each
    as it reads in a subsection (its own headings one level down). A run's heading is a ``### `` line whose next
    text is its command; a section without one holds one run, named after its command's ``--out`` folder."""
    body = lines[4:]
    starts = [i for i, line in enumerate(body) if line.startswith("### ")
              and next((x for x in body[i + 1:] if x), "").startswith("`")]
    if not starts:
        cmd = next((line for line in body if line.startswith("`")), None)
        if cmd is None:
            return {}
        out = re.search(r"--out (\S+)", cmd)
        return {Path(out.group(1).strip("`'")).name if out else name: demoted(body)}
    return {body[i][4:]: body[i + 2:j] for i, j in zip(starts, [*starts[1:], len(body)])}


def section(name: str, results: Path, out: Path, old: dict[str, list[str]]) -> list[str]:
    """A benchmark's section: for each of its runs (folders matching ``FOLDERS``), the command, table and plot;
    the page's old runs that are not under ``results`` stay as they were."""
    title, cls, what = BENCHMARKS[name]
    prog = name if name in CONSOLE_SCRIPTS else f"python -m experiments.{MODULES.get(name, name)}"
    lines = [f"## {title}", "", what, ""]
    runs = {f.name: f for f in results.glob(FOLDERS.get(name, name)) if (f / f"{name}.json").is_file()}
    kept = {k: v for k, v in old_runs(name, old.get(title, [])).items() if k not in runs}
    if not runs:
        return old.get(title) or lines + [f"Not run yet: `{command(prog, cls, {})}`", ""]
    several = len(runs) + len(kept) > 1
    for key in sorted({*runs, *kept}):
        if key in kept:
            body = kept[key]
            while body and not body[-1]:  # one blank line before the next run
                body = body[:-1]
            lines += [f"### {key}", "", *body, ""]
            continue
        folder = runs[key]
        data = json.loads((folder / f"{name}.json").read_text())
        md = (folder / f"{name}.md").read_text().splitlines()
        if several:  # one subsection per run, its own headings one level down
            lines += [f"### {folder.name}", ""]
            md = demoted(md)
        lines += [f"`{command(prog, cls, data['config'])}`", "", *md, ""]
        png, plot = folder / f"{name}.png", f"{folder.name if several else name}.png"
        if png.is_file():
            atomic_write_bytes(out / plot, png.read_bytes())
            lines += [f"![{name}]({plot})", ""]
    return lines


def main(cfg: ReportConfig) -> Path:
    cfg.out.mkdir(parents=True, exist_ok=True)
    page = cfg.out / "results.md"
    old = old_sections(page)
    lines = ["# vidit results", "",
             "Every table below is written by a script under `experiments/`; its command is above it. "
             "Regenerate this page with `python -m experiments.report`.", "",
             "Shipped models the numbers come from:", "", "| model | sha256 of its weights |", "|---|---|", *model_hashes(), ""]
    for name in BENCHMARKS:
        lines += section(name, cfg.results, cfg.out, old)
    atomic_write_bytes(page, ("\n".join(lines).rstrip("\n") + "\n").encode())
    print(f"wrote {page}")
    return page


def cli() -> None:
    run(main, ReportConfig)


if __name__ == "__main__":
    cli()
