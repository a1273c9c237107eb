"""``speed_bench``: how fast the world model imagines, measured side by side in one run.

    python -m experiments.speed_bench [--quick] [--preset small] [--tokens-per-frame 16] [--out results/speed]
    python -m experiments.speed_bench --parts planning --threads 2    # VP²'s 200 x 10 planning call alone

On the same random weights (a trained model decodes at the same speed):
1. ``imagine_vs_hf``: imagined frames/s of our KV-cache sampler vs ``transformers``' ``generate`` on
   the exported LlamaForCausalLM, at batch 1 and batch N (200; 16 in ``--quick``).
2. ``prefix_speedup``: ``rollout`` of N action sequences sharing one context prefix (prefilled once,
   cache broadcast, all N decoded in one batch) vs naive per-sample generation (each sample
   prefills its own context and decodes alone), as MPC would do without batching.
   ``cascade_speedup``: the same shared-prefix rollout with one-token attention by torch's SDPA, every
   row reading the prompt's keys from its own copy, vs our cascade attention, which reads them once for
   all rows (:func:`worldmodel.decoder.decode_attention`); it grows with the context.
3. ``flops_frac``: the decoder's FLOP/s during batch-N decode as a fraction of this machine's
   measured dense matmul FLOP/s.
4. ``planning_call_speedup``: one MPC planning call on a trained world model (``--model``), everything a
   planning step does: N action-conditioned rollouts of H frames from 2 context frames, their pixels
   decoded, VP²'s classifier cost (``--classifier``) against a goal frame. Today's path (float32) vs the
   fast path (``--precision``: bfloat16 where the CPU has AMX/AVX512-BF16), both in this run.
   ``planning_share_{ids,pixels,cost}``: the fast call's time split into sampling the ids, decoding them
   to pixels and the cost: what a lever on each part (fewer ids a frame, a cost in token space) may cut.

The last line reads ``imagine_vs_hf_b1=X imagine_vs_hf_b200=X prefix_speedup=X cascade_speedup=X flops_frac=X
planning_call_speedup=X``. Writes ``speed.{md,csv,json}`` to ``--out``.
"""
from __future__ import annotations

import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Optional
from unittest import mock

import numpy as np
import torch
import torch.nn.functional as F

from agents.costs import VideoCost
from agents.mpc import ModelPredictor
from envs.demos import load_demo
from experiments.tables import write_table
from vidit.cli import UsageError, run
from worldmodel.classifier import load_classifiers
from worldmodel.decoder import Decoder, DecoderConfig
from worldmodel.export_hf import export_hf
from worldmodel.layout import Layout
from worldmodel.precision import Precision, resolve_dtype
from worldmodel.sampling import generate, generate_shared_prefix
from worldmodel.simulator import VideoSimulator

PARTS = ("sampler", "planning")
HEADLINE = ("imagine_vs_hf_b1", "imagine_vs_hf_b200", "prefix_speedup", "cascade_speedup", "flops_frac",
            "planning_call_speedup")  # the last line's ratios, where measured


@dataclass
class SpeedConfig:
    """Measure imagination speed against transformers, the shared-prefix gain and FLOP utilisation."""
    preset: str = field(default="small", metadata={"help": "decoder preset"})
    codebook: int = field(default=1024, metadata={"help": "codebook size"})
    tokens_per_frame: int = field(default=64, metadata={"help": "ids per frame (64: the shipped f8 tokenizer's 8x8; 16: f16)"})
    context_frames: int = field(default=2, metadata={"help": "context frames (VP²: 2)"})
    horizon: int = field(default=10, metadata={"help": "frames generated per sample (VP²: 10)"})
    n: int = field(default=200, metadata={"help": "samples per planning call (VP² MPPI: 200)"})
    quick: bool = field(default=False, metadata={"help": "N=16, 2 frames: under a minute on 2 cores"})
    parts: tuple[str, ...] = field(default=("sampler", "planning"), metadata={
        "help": "sampler: sections 1-3 (random weights, against transformers); planning: the planning call"})
    out: Path = field(default=Path("results/speed"), metadata={"help": "output folder"})
    threads: Optional[int] = field(default=None, metadata={"help": "torch CPU threads (default: torch's choice)"})
    model: str = field(default="robodesk", metadata={"help": "world model of the planning call (a shipped name or a folder)"})
    classifier: str = field(default="desk-demo-k8", metadata={"help": "the planning call's cost classifier(s)"})
    precision: Precision = field(default="auto", metadata={
        "help": "the planning call's fast path (the baseline is float32; auto: bfloat16 where the CPU has it)"})
    seed: int = 0

    def __post_init__(self):
        if not self.parts or set(self.parts) - set(PARTS):
            raise UsageError(f"--parts takes {' and/or '.join(PARTS)}, got {' '.join(self.parts) or 'none'}")

    @property
    def shape(self) -> tuple[int, int]:
        """(samples, frames each) measured: --quick's 16 x 2, else --n x --horizon."""
        return (16, 2) if self.quick else (self.n, self.horizon)


def _time(fn, repeat: int = 1, warmup: bool = False) -> float:
    if warmup:
        fn()
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def sdpa_decode(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, shared: int = 0) -> torch.Tensor:
    """One-token attention as before cascade attention: torch's SDPA, each row over its own keys."""
    return F.scaled_dot_product_attention(q, k, v, enable_gqa=True)


def matmul_flops(n: int = 1024) -> float:
    """This machine's dense fp32 matmul FLOP/s (best of a few)."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    return 2 * n ** 3 / _time(lambda: a @ b, repeat=5, warmup=True)


def decode_flops_per_token(cfg: DecoderConfig, context: int) -> float:
    """Forward FLOPs of one decoded token: 2 x weights used + attention over ``context`` cached keys."""
    d, kv = cfg.dim, cfg.n_kv_head * cfg.head_dim
    per_layer = 2 * (d * d * 2 + d * kv * 2 + 3 * d * cfg.intermediate_size) + 4 * context * d
    return cfg.n_layer * per_layer + 2 * d * cfg.vocab_size


def measure(cfg: SpeedConfig) -> dict:
    n, horizon = cfg.shape
    layout = Layout(cfg.codebook, cfg.tokens_per_frame)
    length = layout.length(cfg.context_frames)
    n_new = horizon * cfg.tokens_per_frame
    dcfg = DecoderConfig.from_name(cfg.preset, vocab_size=layout.vocab_size, max_seq_len=length + n_new)
    torch.manual_seed(cfg.seed)
    model = Decoder(dcfg).eval()
    prompt = torch.randint(cfg.codebook, (1, length))
    prompt[:, 0] = layout.bos
    g = lambda: torch.Generator().manual_seed(cfg.seed)  # noqa: E731
    frames = lambda secs, batch: batch * horizon / secs  # noqa: E731

    with tempfile.TemporaryDirectory() as tmp:
        export_hf(model, Path(tmp) / "hf")
        from transformers import LlamaForCausalLM
        hf = LlamaForCausalLM.from_pretrained(Path(tmp) / "hf").eval()

    def ours(batch):
        return lambda: generate(model, prompt.expand(batch, -1), n_new, generator=g(), vocab=cfg.codebook)

    def theirs(batch):
        return lambda: hf.generate(prompt.expand(batch, -1), max_new_tokens=n_new, min_new_tokens=n_new,
                                   do_sample=True, top_k=0, pad_token_id=layout.eos, eos_token_id=None)

    out = {"n": n, "horizon": horizon, "params": sum(p.numel() for p in model.parameters())}
    with torch.no_grad():
        for batch, key in ((1, "b1"), (n, f"b{n}")):
            t_ours, t_hf = _time(ours(batch)), _time(theirs(batch))
            out[f"ours_frames_per_s_{key}"] = round(frames(t_ours, batch), 2)
            out[f"hf_frames_per_s_{key}"] = round(frames(t_hf, batch), 2)
            out[f"imagine_vs_hf_{key}"] = round(t_hf / t_ours, 2)
        def rollout():
            return generate_shared_prefix(model, prompt, n, n_new, generator=g(), vocab=cfg.codebook)

        shared = _time(rollout)
        with mock.patch("worldmodel.decoder.decode_attention", sdpa_decode):
            plain = _time(rollout)
        one = _time(lambda: generate(model, prompt, n_new, generator=g(), vocab=cfg.codebook))
        out["rollout_shared_s"] = round(shared, 3)
        out["rollout_naive_s"] = round(one * n, 3)
        out["prefix_speedup"] = round(one * n / shared, 2)
        out["rollout_sdpa_s"] = round(plain, 3)
        out["cascade_speedup"] = round(plain / shared, 2)
        flops = decode_flops_per_token(dcfg, length + n_new // 2) * n * n_new / shared
        peak = matmul_flops()
        out["decode_gflops"], out["matmul_gflops"] = round(flops / 1e9, 2), round(peak / 1e9, 2)
        out["flops_frac"] = round(flops / peak, 3)
    return out


def planning_call(cfg: SpeedConfig, n: int, horizon: int) -> dict:
    """Seconds of one planning call (rollouts + pixels + cost) by today's float32 path and the fast path, and
    the fast path's shares: sampling the ids, decoding them to pixels, the cost (what a lever may cut)."""
    demo = load_demo("push_red", 64, None, 2)
    context, goal = demo[:2], demo[-1]
    cost = VideoCost("classifier", goal.shape, load_classifiers(cfg.classifier))
    out, fast = {}, resolve_dtype(cfg.precision)
    for path, dtype in (("baseline", torch.float32), ("fast", fast)):
        sim = VideoSimulator.from_pretrained(cfg.model, dtype=dtype)
        space = sim.config["action_space"]
        actions = np.random.default_rng(cfg.seed).uniform(space["low"], space["high"], (n, horizon, *space["shape"]))
        past = np.zeros((len(context) - 1, *space["shape"]), np.float32)
        predict = ModelPredictor(sim)
        out[f"planning_call_s_{path}"] = round(_time(lambda: cost(predict(0, context, past, actions, cfg.seed), goal)), 3)
    made: dict = {}  # the fast path's call again, part by part
    secs = {"ids": _time(lambda: made.update(ids=sim.rollout(context, actions, seed=cfg.seed, past_actions=past,
                                                              pixels=False)))}
    secs["pixels"] = _time(lambda: made.update(frames=sim.decode(made["ids"])))
    secs["cost"] = _time(lambda: cost(made["frames"], goal))
    out.update({f"planning_share_{k}": round(v / sum(secs.values()), 3) for k, v in secs.items()})
    out["planning_call_fast_dtype"] = str(fast).removeprefix("torch.")
    out["planning_call_speedup"] = round(out["planning_call_s_baseline"] / out["planning_call_s_fast"], 2)
    return out


def main(cfg: SpeedConfig) -> None:
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    n, horizon = cfg.shape
    r = measure(cfg) if "sampler" in cfg.parts else {"n": n, "horizon": horizon}
    if "planning" in cfg.parts:
        r.update(planning_call(cfg, n, horizon))
    rows = [{"metric": k, "value": v} for k, v in r.items()]
    write_table(cfg.out, "speed", rows, ["metric", "value"],
                {"config": {**asdict(cfg), "out": str(cfg.out)}, "threads": torch.get_num_threads()})
    for row in rows:
        print(f"{row['metric']:>28} {row['value']}")
    # The headline names keep "b200" whatever N --quick uses; the ratio is measured at that N.
    r["imagine_vs_hf_b200"] = r.get(f"imagine_vs_hf_b{n}")
    print(" ".join(f"{k}={r[k]}" for k in HEADLINE if r.get(k) is not None))


def cli() -> None:
    run(main, SpeedConfig)


if __name__ == "__main__":
    cli()
