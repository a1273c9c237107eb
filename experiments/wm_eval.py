"""``wm_eval``: the VidIT paper's Table 1 on our domains: does the continuation follow the demo? (open loop)

    wm_eval --out results/wm_eval                        # Crafter + push_red, shipped models
    wm_eval --domains push_red --lpips lpips.pt --i3d i3d_torchscript.pt
    wm_eval --quick                                      # CI-sized

Held-out episodes of several behaviour classes are recorded from the real envs (seeds 900000 and up,
never in training data): Crafter ``chop_wood`` and ``eat_cow`` (experts) and ``walk_left/right/up/down``;
push_red ``press`` (expert) and ``no press`` (random policy). Per class the first ``--probe-episodes``
episodes are the demo pool and the probe's training set, the next ``--episodes`` the queries. A query
is 4 real frames; the model generates the next 4 (the paper's main setting: k=1 demo of 8 frames, 4
query, 4 generated) for each demonstration type: none; random (a demo of a class drawn at random);
in-class (another episode of the query's class); contrastive (the paired class: chop_wood/eat_cow,
left/right, up/down, press/no press); and the paper's ablation of in-class demo formats 1x4, 2x4, 1x8.

Metrics against the query's real next 4 frames: PSNR and SSIM; LPIPS, and FVD (I3D features of
query + continuation, 8 frames), only with local TorchScript networks (``--lpips``, ``--i3d``), else
skipped with a message. P-Acc: a linear probe on the decoder's last-layer hidden states of the 4
continuation frames, fitted on the probe episodes' real clips (query + real frames, no demo) and
applied to query + generated frames. ``p_acc`` scores it against the query's class (the ground truth,
as the paper), ``demo_acc`` against the demo's (does the continuation follow the demo?), and the row
``real`` gives the probe's accuracy on the real continuations. Writes ``wm_eval.{md,csv,json,png}``;
generated frames are kept per setting under ``--out/generated/``, so a rerun resumes.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np
import torch
from tqdm import tqdm

from envs.collect import CollectConfig, collect
from envs.dataset import EpisodeDataset
from experiments.tables import figure, weights_digest, write_table
from vidit.cli import UsageError, config_json, run
from vidit.files import atomic_path
from vidit.runs import claim_out
from worldmodel import metrics
from worldmodel.simulator import VideoSimulator, resolve_model
from vidit import seeding

DEMO, QUERY, GEN = 8, 4, 4  # the paper's main setting
SEED = 900_000  # held-out episodes: far from every training seed
SETTINGS = {  # name -> (demo type, format)
    "none": ("none", "-"), "random": ("random", "1x8"), "in-class": ("in-class", "1x8"),
    "contrastive": ("contrastive", "1x8"), "in-class 1x4": ("in-class", "1x4"), "in-class 2x4": ("in-class", "2x4"),
}


@dataclass(frozen=True)
class Domain:
    env: str
    model: str
    classes: dict  # class -> collect settings (policy, noise, task)
    contrast: dict  # class -> its contrastive class
    start: Optional[int]  # first frame of every window (push_red: the press falls in frames 6-9); None: random
    max_steps: int


def _pairs(*pairs: tuple[str, str]) -> dict:
    return {k: v for a, b in pairs for k, v in ((a, b), (b, a))}


DOMAINS = {
    "crafter": Domain("crafter", "crafter", {
        "chop_wood": dict(policy="expert", task="chop_wood", noise=0.1),
        "eat_cow": dict(policy="expert", task="eat_cow", noise=0.1),
        **{f"walk_{d}": dict(policy=f"walk_{d}", noise=0.1) for d in ("left", "right", "up", "down")}},
        _pairs(("chop_wood", "eat_cow"), ("walk_left", "walk_right"), ("walk_up", "walk_down")), None, 40),
    "push_red": Domain("push_red", "robodesk-push-red", {
        "press": dict(policy="expert", noise=0.1), "no press": dict(policy="random")},
        _pairs(("press", "no press")), 2, 15),
}


@dataclass
class WMEvalConfig:
    """Open-loop in-context imitation: visual quality and probe accuracy per demonstration type."""
    out: Path = field(default=Path("results/wm_eval"), metadata={"help": "output folder"})
    domains: tuple[str, ...] = field(default=("crafter", "push_red"), metadata={"help": "crafter, push_red"})
    crafter_model: Optional[str] = field(default=None, metadata={"help": "Crafter world model (none: shipped)"})
    push_red_model: Optional[str] = field(default=None, metadata={"help": "push_red world model (none: shipped)"})
    episodes: int = field(default=20, metadata={"help": "query episodes per class"})
    probe_episodes: int = field(default=20, metadata={"help": "episodes per class for the demo pool and the probe"})
    batch: int = field(default=60, metadata={"help": "queries generated per batched call"})
    lpips: Optional[Path] = field(default=None, metadata={
        "help": "TorchScript LPIPS net(x, y) on [-1, 1] images (none: LPIPS skipped)"})
    i3d: Optional[Path] = field(default=None, metadata={
        "help": "TorchScript I3D in StyleGAN-V's convention, i3d_torchscript.pt (none: FVD skipped)"})
    seed: int = field(default=0, metadata={"help": "sampling and window seed"})
    workers: int = field(default=1, metadata={"help": "processes recording the held-out episodes"})
    threads: Optional[int] = field(default=None, metadata={"help": "torch CPU threads"})
    quick: bool = field(default=False, metadata={"help": "2 + 2 episodes per class, 10-step push_red (CI-sized)"})

    def __post_init__(self):
        unknown = sorted(set(self.domains) - set(DOMAINS))
        if unknown or not self.domains:
            raise UsageError(f"unknown domains {unknown}; known: {', '.join(DOMAINS)}")
        if self.probe_episodes < 2 or self.episodes < 1 or self.batch < 1 or self.workers < 1:
            raise UsageError("--probe-episodes must be >= 2 (two in-class demos), --episodes, --batch, --workers >= 1")
        for name in ("lpips", "i3d"):
            path = getattr(self, name)
            if path is not None and not path.is_file():
                raise UsageError(f"--{name} {path}: no such file (a TorchScript network)")
        if self.quick:
            self.episodes, self.probe_episodes = min(self.episodes, 2), min(self.probe_episodes, 2)

    def model(self, domain: str) -> str:
        return {"crafter": self.crafter_model, "push_red": self.push_red_model}[domain] or DOMAINS[domain].model


def record(cfg: WMEvalConfig, name: str) -> dict[str, EpisodeDataset]:
    """The held-out episodes of every class of domain ``name`` (recorded once, then reused)."""
    dom = DOMAINS[name]
    steps = min(dom.max_steps, 10) if cfg.quick else dom.max_steps
    data = {}
    for k, (cls, kw) in enumerate(dom.classes.items()):
        out = cfg.out / "episodes" / name / cls.replace(" ", "_")
        collect(CollectConfig(env=dom.env, episodes=cfg.probe_episodes + cfg.episodes, out=out, seed=SEED + 1000 * k,
                              workers=cfg.workers, max_steps=steps, **kw))
        data[cls] = EpisodeDataset(out)
        if len(_episodes(data[cls])) < cfg.probe_episodes + cfg.episodes:
            raise UsageError(f"{out}: only {len(_episodes(data[cls]))} episodes last {DEMO} frames; "
                             f"{cfg.probe_episodes + cfg.episodes} needed")
    return data


@dataclass
class Item:
    """One query: its class, real frames (query + continuation) and the demo clips of every setting."""
    cls: str
    clip: np.ndarray  # [QUERY + GEN, H, W, 3]
    demos: dict  # setting -> (demo class, [clips])


def _episodes(data: EpisodeDataset) -> list[int]:
    """Episodes long enough for a demo window (a Crafter player may die early)."""
    return [e for e in data.episodes if data.length(e) + 1 >= DEMO]


def _window(dom: Domain, frames: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    start = dom.start if dom.start is not None else int(rng.integers(len(frames) - DEMO + 1))
    return frames[start:start + DEMO]


def items(cfg: WMEvalConfig, name: str, data: dict[str, EpisodeDataset]) -> list[Item]:
    """Every query of domain ``name`` with its demos, drawn from the probe episodes (seeded)."""
    dom = DOMAINS[name]
    classes = list(dom.classes)
    out = []
    for ci, cls in enumerate(classes):
        for e in _episodes(data[cls])[cfg.probe_episodes:cfg.probe_episodes + cfg.episodes]:
            rng = seeding.rng(cfg.seed, ci, e)

            def demo(c: str, k: int | None = None) -> np.ndarray:
                pool = _episodes(data[c])[:cfg.probe_episodes]
                return _window(dom, data[c].frames(pool[rng.integers(len(pool)) if k is None else k]), rng)

            clip = _window(dom, data[cls].frames(e), rng)
            first, second = (demo(cls, int(k)) for k in rng.choice(cfg.probe_episodes, 2, replace=False))
            other = classes[rng.integers(len(classes))]
            out.append(Item(cls, clip, {
                "none": (None, []), "random": (other, [demo(other)]), "in-class": (cls, [first]),
                "contrastive": (dom.contrast[cls], [demo(dom.contrast[cls])]),
                "in-class 1x4": (cls, [first[GEN:]]), "in-class 2x4": (cls, [second[GEN:], first[GEN:]])}))
    return out


def generate(cfg: WMEvalConfig, sim: VideoSimulator, setting: str, queries: list[Item], path: Path) -> np.ndarray:
    """The 4 generated frames of every query under ``setting`` ``[N, GEN, H, W, 3]``, saved to ``path`` for resuming."""
    if path.is_file():
        return np.load(path)
    gen = []
    for i in tqdm(range(0, len(queries), cfg.batch), desc=f"generate {path.stem}", unit="batch"):
        chunk = queries[i:i + cfg.batch]
        n_demos = len(chunk[0].demos[setting][1])
        demos = [np.stack([q.demos[setting][1][j] for q in chunk]) for j in range(n_demos)]
        gen.append(sim.imagine_batch(demos, np.stack([q.clip[:QUERY] for q in chunk]), GEN, seed=seeding.derive(cfg.seed, i))[:, 0])
    gen = np.concatenate(gen)
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.save(f, gen)
    return gen


def probe(sim: VideoSimulator, dom: Domain, data: dict[str, EpisodeDataset], cfg: WMEvalConfig) -> metrics.LinearProbe:
    """A linear probe (class of the behaviour) on hidden states of the probe episodes' real clips."""
    clips, labels = [], []
    for ci, cls in enumerate(dom.classes):
        for e in _episodes(data[cls])[:cfg.probe_episodes]:
            rng = seeding.rng(cfg.seed, ci, e, 1)
            for _ in range(1 if dom.start is not None else 4):  # Crafter: several windows per episode
                clips.append(_window(dom, data[cls].frames(e), rng))
                labels.append(ci)
    return metrics.LinearProbe().fit(_features(sim, np.stack(clips), cfg.batch), np.array(labels))


def _features(sim: VideoSimulator, clips: np.ndarray, batch: int) -> np.ndarray:
    return np.concatenate([sim.features(clips[i:i + batch], first_frame=QUERY) for i in range(0, len(clips), batch)])


def evaluate(cfg: WMEvalConfig, name: str, settings: tuple[str, ...] = tuple(SETTINGS),
             generated: Optional[Path] = None) -> list[dict]:
    """Rows of domain ``name``: the probe on real clips, then each setting (generated frames kept under
    ``generated``, by default ``--out/generated``)."""
    dom = DOMAINS[name]
    generated = generated or cfg.out / "generated"
    sim = VideoSimulator.from_pretrained(cfg.model(name))
    data = record(cfg, name)
    queries = items(cfg, name, data)
    classes = list(dom.classes)
    truth = np.array([classes.index(q.cls) for q in queries])
    real = np.stack([q.clip for q in queries])
    lp = probe(sim, dom, data, cfg)
    nets = {k: metrics.load_torchscript(p, k.upper()) for k, p in (("lpips", cfg.lpips), ("i3d", cfg.i3d)) if p}
    rows = [{"domain": name, "setting": "real", "p_acc": round(float(np.mean(
        lp.predict(_features(sim, real, cfg.batch)) == truth)), 3)}]
    for setting in settings:
        kind, fmt = SETTINGS[setting]
        gen = generate(cfg, sim, setting, queries, generated / f"{name}_{setting.replace(' ', '_')}.npy")
        clips = np.concatenate([real[:, :QUERY], gen], axis=1)
        pred = lp.predict(_features(sim, clips, cfg.batch))
        demo_cls = np.array([classes.index(q.demos[setting][0]) if q.demos[setting][0] else -1 for q in queries])
        row = {"domain": name, "setting": setting, "demo": kind, "format": fmt, "queries": len(queries),
               "psnr": round(float(np.mean([metrics.psnr(g, r) for g, r in zip(gen, real[:, QUERY:])])), 2),
               "ssim": round(float(np.mean([metrics.ssim(g, r) for g, r in zip(gen, real[:, QUERY:])])), 3),
               "p_acc": round(float(np.mean(pred == truth)), 3),
               "demo_acc": round(float(np.mean(pred == demo_cls)), 3) if kind != "none" else "-"}
        if "lpips" in nets:
            row["lpips"] = round(metrics.lpips(nets["lpips"], gen, real[:, QUERY:]), 4)
        if "i3d" in nets:
            row["fvd"] = round(metrics.frechet_distance(metrics.i3d_features(nets["i3d"], clips),
                                                        metrics.i3d_features(nets["i3d"], real)), 1)
        rows.append(row)
    return rows


def main(cfg: WMEvalConfig) -> list[dict]:
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    for name in cfg.domains:
        resolve_model(cfg.model(name))  # a wrong --*-model fails before --out is touched
    claim_out(cfg.out, {k: v for k, v in config_json(cfg).items()
                        if k not in ("out", "workers", "threads")}, frozenset({"domains"}))
    skipped = [f"{m} (pass --{flag})" for m, flag in (("LPIPS", "lpips"), ("FVD", "i3d")) if getattr(cfg, flag) is None]
    if skipped:
        print(f"wm_eval: skipping {', '.join(skipped)}: their networks cannot be downloaded here")
    rows = [row for name in cfg.domains for row in evaluate(cfg, name)]
    keys = ["domain", "setting", "demo", "format", "queries", "psnr", "ssim"]
    keys += [k for k in ("lpips", "fvd") if any(k in r for r in rows)] + ["p_acc", "demo_acc"]
    write_table(cfg.out, "wm_eval", rows, keys, {"config": config_json(cfg),
                                                 "models": {n: _model_id(cfg.model(n)) for n in cfg.domains}})
    _plot(rows, cfg.out / "wm_eval.png")
    print((cfg.out / "wm_eval.md").read_text())
    return rows


def _model_id(name: str) -> dict:
    path = resolve_model(name)
    return {"path": str(path), "sha256": weights_digest(path)}


def _plot(rows: list[dict], path: Path) -> None:
    domains = list(dict.fromkeys(r["domain"] for r in rows))
    with figure(path, 2, len(domains), figsize=(4.5 * len(domains), 6)) as (fig, axes):
        for col, name in zip(axes.T, domains):
            sub = [r for r in rows if r["domain"] == name and r["setting"] != "real"]
            names = [r["setting"] for r in sub]
            col[0].bar(range(len(sub)), [r["psnr"] for r in sub], color="C0")
            col[0].set_ylabel("PSNR (dB)")
            col[0].set_ylim(min(r["psnr"] for r in sub) - 2, max(r["psnr"] for r in sub) + 1)
            col[0].set_title(f"{name} ({sub[0]['queries']} queries)")
            width = 0.4
            x = np.arange(len(sub))
            col[1].bar(x - width / 2, [r["p_acc"] for r in sub], width, label="P-Acc (query's class)")
            col[1].bar(x + width / 2, [0 if r["demo_acc"] == "-" else r["demo_acc"] for r in sub], width,
                       label="probe = demo's class")
            real = next(r["p_acc"] for r in rows if r["domain"] == name and r["setting"] == "real")
            col[1].axhline(real, color="k", ls="--", lw=1, label="probe on real")
            col[1].set_ylim(0, 1.05)
            col[1].legend(fontsize=7)
            for ax in col:
                ax.set_xticks(range(len(sub)), names if ax is col[1] else [], rotation=30, ha="right", fontsize=8)


def cli() -> None:
    run(main, WMEvalConfig)


if __name__ == "__main__":
    cli()
