"""``train_worldmodel``: next-token training of the VidIT decoder on pre-tokenised episode shards.

    train_worldmodel --data data/push_red.npz --tokenizer models/tok --out models/push_red --preset small
    torchrun --nproc_per_node 2 -m worldmodel.train_worldmodel ...     # DDP, unchanged

Reads top to bottom: data (16-frame clips with a stride, or with ``--pack same-task`` demo + query
sequences of one task, sampled per step from a seed), model,
optimiser (AdamW, warmup then inverse-square-root decay, grad clipping, bf16 autocast on GPU), the
loop, held-out evaluation (loss, token accuracy, teacher-forced next-frame PSNR) to CSV and
TensorBoard, and atomic checkpoints. A batch depends only on (seed, step, rank), so a resumed run
continues to the same result. The output folder is a world model that
``worldmodel.VideoSimulator.from_pretrained`` loads: ``config.json``, ``decoder/``, ``tokenizer/``.
"""
from __future__ import annotations

import contextlib
import math
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Optional

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from tqdm import tqdm

from vidit.cli import UsageError, run
from vidit.files import append_csv, write_json
from worldmodel import checkpoints
from worldmodel.actions import ActionEncoder
from worldmodel.clips import ClipSampler, PackedSampler, load_episodes
from worldmodel.decoder import Decoder, DecoderConfig
from worldmodel.layout import ActionSpan, Layout
from worldmodel.simulator import resolve_model
from worldmodel.tokenizer import VQTokenizer
from vidit.seeding import generator

WORLD_MODEL_VERSION = 1


@dataclass
class TrainConfig:
    """Train the VidIT decoder (optionally action-conditioned) on token shards."""
    data: tuple[Path, ...] = field(default=(), metadata={"help": "token shards (.npz) from tokenize_data"})
    tokenizer: Path = field(default=Path("models/tokenizer"), metadata={"help": "tokenizer folder the shards were made with"})
    out: Path = field(default=Path("runs/worldmodel"), metadata={"help": "output world-model folder (resumes if it holds a checkpoint)"})
    preset: str = field(default="small", metadata={"help": "decoder preset (tiny, nano, micro, small, 300M, 700M, 1.1B)"})
    init: Optional[Path] = field(default=None, metadata={
        "help": "start from this world model's decoder (folder or shipped name) to fine-tune it; "
                "its preset, vocabulary and action dim must match"})
    max_seq_len: Optional[int] = field(default=None, metadata={
        "help": "context window in tokens (default: the preset's, and at least one clip)"})
    clip_frames: int = field(default=16, metadata={"help": "frames per training clip (packed: demo + query frames)"})
    pack: Literal["none", "same-task"] = field(default="none", metadata={
        "help": "none: VidIT's single clips; same-task: [bos] demo query [eos], the demo a window of one episode "
                "reaching its success, the query the start of another episode of the same task (the prompt "
                "the sampler builds), so the model must read the task from the demo"})
    demo_frames: int = field(default=8, metadata={"help": "packed: frames of the demo clip (the query gets the rest)"})
    single_ratio: float = field(default=0.0, metadata={
        "help": "packed: fraction of sequences that are VidIT single clips instead"})
    stride: int = field(default=1, metadata={"help": "frame stride inside a clip"})
    actions: bool = field(default=True, metadata={"help": "condition on actions when the data has them"})
    action_dropout: float = field(default=0.5, metadata={"help": "probability a clip is trained without its actions"})
    action_span: ActionSpan = field(default="token", metadata={
        "help": "token: each action at one position (iVideoGPT); frame: at every position predicting the next frame"})
    token_noise: float = field(default=0.0, metadata={
        "help": "probability an input frame token is replaced by a random code (targets stay clean): "
                "robustness to the model's own sampling errors, as GameNGen's context noise"})
    batch_size: int = field(default=16, metadata={"help": "clips per step per process"})
    max_steps: int = field(default=2000, metadata={"help": "optimizer steps"})
    lr: float = field(default=1e-3, metadata={"help": "peak learning rate"})
    warmup: int = field(default=100, metadata={"help": "linear warmup steps, then lr * sqrt(warmup / step)"})
    weight_decay: float = 0.1
    grad_clip: float = 1.0
    holdout: float = field(default=0.1, metadata={"help": "fraction of episodes held out for evaluation"})
    eval_every: int = field(default=200, metadata={"help": "steps between evaluations and checkpoints"})
    eval_clips: int = field(default=64, metadata={"help": "held-out clips per evaluation"})
    select: Literal["last", "best"] = field(default="last", metadata={
        "help": "which evaluated weights decoder/ holds: the last, or those of the lowest held-out loss"})
    max_minutes: Optional[float] = field(default=None, metadata={
        "help": "also stop at the first evaluation after this much training time (resume to go on)"})
    seed: int = 0
    device: str = field(default="auto", metadata={"help": "auto, cpu or cuda"})
    threads: Optional[int] = field(default=None, metadata={
        "help": "torch CPU threads (default: torch's choice); 1 is often fastest on a busy shared machine"})

    def __post_init__(self):
        if not self.data:
            raise UsageError("give at least one token shard with --data")
        for name in ("clip_frames", "stride", "batch_size", "max_steps", "warmup", "eval_every", "eval_clips"):
            if getattr(self, name) < 1:
                raise UsageError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(self, name)}")
        if self.threads is not None and self.threads < 1:
            raise UsageError(f"--threads must be >= 1, got {self.threads}")
        if self.max_minutes is not None and self.max_minutes <= 0:
            raise UsageError(f"--max-minutes must be > 0, got {self.max_minutes}")
        if not 0 <= self.action_dropout <= 1 or not 0 <= self.token_noise < 1 or not 0 < self.holdout < 1:
            raise UsageError("--action-dropout must lie in [0, 1], --token-noise in [0, 1) and --holdout in (0, 1)")
        if self.pack != "none" and not self.demo_frames < self.clip_frames or self.demo_frames < 1:
            raise UsageError(f"--demo-frames must lie in [1, {self.clip_frames - 1}] (--clip-frames {self.clip_frames} "
                             f"holds demo + query), got {self.demo_frames}")
        if not 0 <= self.single_ratio <= 1:
            raise UsageError(f"--single-ratio must lie in [0, 1], got {self.single_ratio}")


# -- schedule ---------------------------------------------------------------------------------
def lr_at(step: int, cfg: TrainConfig) -> float:
    """Linear warmup to ``lr``, then inverse-square-root decay (VidIT's schedule)."""
    s = step + 1
    return cfg.lr * min(s / cfg.warmup, math.sqrt(cfg.warmup / s))


def batch_generator(cfg: TrainConfig, step: int, rank: int) -> torch.Generator:
    return generator(cfg.seed, step, rank)


# -- the run ----------------------------------------------------------------------------------
def train(cfg: TrainConfig) -> dict:
    ddp = "RANK" in os.environ and int(os.environ.get("WORLD_SIZE", "1")) > 1
    device = torch.device("cuda" if cfg.device == "auto" and torch.cuda.is_available() else
                          ("cpu" if cfg.device == "auto" else cfg.device))
    rank = 0
    if ddp:
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
        rank = dist.get_rank()
        if device.type == "cuda":
            device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
            torch.cuda.set_device(device)
    main_proc = rank == 0
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)

    episodes, meta = load_episodes(cfg.data)
    tokenizer = VQTokenizer.from_pretrained(cfg.tokenizer)
    if tokenizer.fingerprint() != meta["fingerprint"]:
        raise UsageError(f"{cfg.tokenizer} is not the tokenizer the shards were made with")
    layout = Layout(meta["codebook_size"], int(np.prod(meta["grid"])), cfg.action_span)
    encoder = ActionEncoder(meta.get("action_space") if cfg.actions else None)
    n_hold = max(1, int(len(episodes) * cfg.holdout))
    order = np.random.default_rng(cfg.seed).permutation(len(episodes))
    held = ClipSampler([episodes[i] for i in order[:n_hold]], cfg.clip_frames, cfg.stride)
    train_clips = ClipSampler([episodes[i] for i in order[n_hold:]], cfg.clip_frames, cfg.stride)
    train_packs = held_packs = None
    if cfg.pack == "same-task":
        train_packs = PackedSampler(train_clips.episodes, cfg.clip_frames, cfg.stride, cfg.demo_frames)
    if cfg.demo_frames < cfg.clip_frames:
        with contextlib.suppress(UsageError):  # whenever the shards record tasks, log how much a demo informs
            held_packs = PackedSampler(held.episodes, cfg.clip_frames, cfg.stride, cfg.demo_frames)
    seq_len = layout.length(cfg.clip_frames, eos=True)

    window = cfg.max_seq_len or DecoderConfig.from_name(cfg.preset, vocab_size=layout.vocab_size).max_seq_len
    model_cfg = DecoderConfig.from_name(cfg.preset, vocab_size=layout.vocab_size, action_dim=encoder.dim,
                                        max_seq_len=max(seq_len, window))
    model = Decoder(model_cfg).to(device)
    if cfg.init is not None:
        _init_from(model, cfg.init)
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": cfg.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}], lr=cfg.lr, betas=(0.9, 0.95),
                            fused=device.type == "cuda")
    ckpt_path = cfg.out / "checkpoint.pt"
    state = {"best": math.inf}  # the lowest held-out loss so far (for --select best)
    step = checkpoints.resume(ckpt_path, cfg, model, opt, map_location=device, state=state)
    net = torch.nn.parallel.DistributedDataParallel(model) if ddp else model
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else contextlib.nullcontext()

    if main_proc:
        cfg.out.mkdir(parents=True, exist_ok=True)
        _save_world_model_meta(cfg, meta, layout, encoder)
    tb = _tensorboard(cfg.out) if main_proc else None
    bar = tqdm(total=cfg.max_steps, initial=step, desc="train_worldmodel", disable=not main_proc, unit="step")
    metrics: dict = {}
    t0 = time.perf_counter()
    while step < cfg.max_steps:
        g = batch_generator(cfg, step, rank)
        tokens, feats = _training_batch(cfg, layout, encoder, train_clips, train_packs, g)
        inputs = _corrupt(tokens[:, :-1], layout, cfg.token_noise, g)
        tokens, inputs, feats = tokens.to(device), inputs.to(device), None if feats is None else feats.to(device)
        for group in opt.param_groups:
            group["lr"] = lr_at(step, cfg)
        with autocast:
            logits = net(inputs, actions=feats)
            loss = F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), tokens[:, 1:].reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        opt.step()
        step += 1
        bar.update()
        bar.set_postfix(loss=f"{loss.item():.3f}")
        if main_proc and (step % cfg.eval_every == 0 or step == cfg.max_steps):
            metrics = {"step": step, "train_loss": loss.item(), "lr": lr_at(step - 1, cfg),
                       "seconds": round(time.perf_counter() - t0, 1), **evaluate(model, layout, encoder, held, cfg, device, tokenizer),
                       **({} if held_packs is None else evaluate_packed(model, layout, encoder, held_packs, cfg, device))}
            watched = metrics["heldout_loss_actions" if encoder.dim else "heldout_loss"]
            saved = cfg.select == "last" or watched < state["best"]
            if saved:
                model.save_pretrained(cfg.out / "decoder")
            state["best"] = min(state["best"], watched)
            _log(cfg.out, tb, {**metrics, "saved": int(saved)})
            checkpoints.save(ckpt_path, cfg, step, model, opt, state=state)
        if step % cfg.eval_every == 0:
            if ddp:
                dist.barrier()
            if cfg.max_minutes is not None and _out_of_time(t0, cfg.max_minutes, device, ddp):
                break
    bar.close()
    if tb is not None:
        tb.close()
    if ddp:
        dist.barrier()
        dist.destroy_process_group()
    return metrics


def _out_of_time(t0: float, minutes: float, device: torch.device, ddp: bool) -> bool:
    """Whether this run's time is up (rank 0 decides, so all ranks stop at the same step)."""
    up = torch.tensor([float(time.perf_counter() - t0 > 60 * minutes)], device=device)
    if ddp:
        dist.broadcast(up, 0)
    return bool(up.item())


def _init_from(model: Decoder, init: Path) -> None:
    """Copy the weights of a trained decoder (a world-model folder, its ``decoder/``, or a shipped name)."""
    root = resolve_model(init)
    root = root / "decoder" if (root / "decoder").is_dir() else root
    c = model.config
    src = Decoder.from_pretrained(root, expect={k: getattr(c, k) for k in ("vocab_size", "action_dim", "dim",
                                                                          "n_layer", "n_head", "n_kv_head")})
    model.load_state_dict(src.state_dict())


def _training_batch(cfg: TrainConfig, layout: Layout, encoder: ActionEncoder, clips: ClipSampler,
                    packs: PackedSampler | None, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor | None]:
    """One batch of sequences: single clips, or packed demo + query (a ``single_ratio`` share of rows single)."""
    ids, raw = clips.sample(cfg.batch_size, g)
    if packs is None:
        return _batch(layout, encoder, [(ids, raw)], cfg.action_dropout, g)
    d_ids, d_act, q_ids, q_act = packs.sample(cfg.batch_size, g)
    tokens, feats = _batch(layout, encoder, [(d_ids, d_act), (q_ids, q_act)], cfg.action_dropout, g)
    single = torch.rand(cfg.batch_size, generator=g) < cfg.single_ratio
    if single.any():
        s_tokens, s_feats = _batch(layout, encoder, [(ids, raw)], cfg.action_dropout, g)
        tokens = torch.where(single[:, None], s_tokens, tokens)
        feats = None if feats is None else torch.where(single[:, None, None], s_feats, feats)
    return tokens, feats


def _batch(layout: Layout, encoder: ActionEncoder, clips: list[tuple[torch.Tensor, torch.Tensor]], dropout: float,
           g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Token sequences ``[bos] clip_1 .. clip_k [eos]`` of clips (ids, raw actions), with their action
    features (a row's actions dropped together with probability ``dropout``)."""
    tokens = layout.sequence(*[ids for ids, _ in clips], eos=True)
    if encoder.dim == 0:
        return tokens, None
    feats = layout.clip_action_features([encoder.encode(raw) for _, raw in clips], [ids.shape[1] for ids, _ in clips],
                                        tokens.shape[1] - 1)
    keep = (torch.rand(len(tokens), generator=g) >= dropout).float()
    return tokens, feats * keep[:, None, None]


def _corrupt(inputs: torch.Tensor, layout: Layout, p: float, g: torch.Generator) -> torch.Tensor:
    """Input ids with each frame token replaced, with probability ``p``, by a random code ([bos]/[eos] kept)."""
    if p == 0:
        return inputs
    hit = (torch.rand(inputs.shape, generator=g) < p) & (inputs < layout.codebook_size)
    return torch.where(hit, torch.randint(layout.codebook_size, inputs.shape, generator=g), inputs)


@torch.no_grad()
def evaluate(model: Decoder, layout: Layout, encoder: ActionEncoder, held: ClipSampler, cfg: TrainConfig,
             device: torch.device, tokenizer: VQTokenizer) -> dict:
    """Held-out loss and token accuracy (with and without actions), and teacher-forced next-frame PSNR."""
    model.eval()
    ids, raw = held.fixed(cfg.eval_clips, cfg.seed)
    tokens = layout.sequence(ids, eos=True).to(device)
    out = {}
    modes = {"": None}
    if encoder.dim:
        modes["_actions"] = layout.action_features(encoder.encode(raw), tokens.shape[1] - 1).to(device)
    for suffix, feats in modes.items():
        logits = torch.cat([model(tokens[i:i + 16, :-1], actions=None if feats is None else feats[i:i + 16]).float()
                            for i in range(0, len(tokens), 16)])
        target = tokens[:, 1:]
        out[f"heldout_loss{suffix}"] = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), target.reshape(-1)).item()
        pred = logits.argmax(-1)
        out[f"token_acc{suffix}"] = (pred == target).float().mean().item()
        out[f"next_frame_psnr{suffix}"] = _teacher_forced_psnr(pred, target, layout, tokenizer)
    model.train()
    return {k: round(v, 4) for k, v in out.items()}


@torch.no_grad()
def evaluate_packed(model: Decoder, layout: Layout, encoder: ActionEncoder, held: PackedSampler, cfg: TrainConfig,
                    device: torch.device) -> dict:
    """How much the demo informs the query: held-out loss on the query's tokens (no actions) after a demo of
    the same task, and after one of another task. The gap is what the model reads from the demo."""
    model.eval()
    out = {}
    for name, other in (("same", False), ("other", True)):
        if other and len(held.tasks) < 2:
            continue
        d_ids, _, q_ids, _ = held.sample(cfg.eval_clips, torch.Generator().manual_seed(cfg.seed), other_task=other)
        tokens = layout.sequence(d_ids, q_ids, eos=True).to(device)
        start = layout.length(held.demo_frames) + layout.tokens_per_frame - 1  # the query's second frame on
        losses = []
        for i in range(0, len(tokens), 16):
            logits = model(tokens[i:i + 16, :-1]).float()[:, start:]
            target = tokens[i:i + 16, 1:][:, start:]
            losses.append(F.cross_entropy(logits.reshape(-1, logits.shape[-1]), target.reshape(-1), reduction="sum"))
        out[f"query_loss_{name}_demo"] = round((sum(losses) / (len(tokens) * (tokens.shape[1] - 1 - start))).item(), 4)
    model.train()
    return out


def _teacher_forced_psnr(pred: torch.Tensor, target: torch.Tensor, layout: Layout, tok: VQTokenizer) -> float:
    """PSNR of the last frame predicted token by token (given the true past) vs the true frame's tokens,
    both decoded by the tokenizer."""
    n = layout.tokens_per_frame
    last = slice(target.shape[1] - 1 - n, target.shape[1] - 1)  # the last frame, before [eos]
    p, t = pred[:, last].clamp(max=layout.codebook_size - 1), target[:, last]
    grid = tok.grid
    a = tok.decode(p.reshape(-1, 1, *grid).cpu()).float()
    b = tok.decode(t.reshape(-1, 1, *grid).cpu()).float()
    mse = ((a - b) ** 2).mean(dim=(1, 2, 3, 4)).clamp(min=1e-10)
    return float((10 * torch.log10(255.0 ** 2 / mse)).mean())


def _save_world_model_meta(cfg: TrainConfig, meta: dict, layout: Layout, encoder: ActionEncoder) -> None:
    tok_dst = cfg.out / "tokenizer"
    if not tok_dst.exists():
        shutil.copytree(cfg.tokenizer, tok_dst, ignore=shutil.ignore_patterns("checkpoint.pt"))  # weights only
    write_json(cfg.out / "config.json", {
        "version": WORLD_MODEL_VERSION, "codebook_size": layout.codebook_size, "grid": list(meta["grid"]),
        "action_span": layout.action_span,
        "frame_size": meta.get("frame_size"), "action_space": encoder.space, "clip_frames": cfg.clip_frames,
        "stride": cfg.stride, "fps": meta.get("fps"), "env_id": meta.get("env_id"),
        "train": {**checkpoints.identity(cfg), "max_steps": cfg.max_steps}})


def _tensorboard(out: Path):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        return None
    return SummaryWriter(str(out / "tb"))


def _log(out: Path, tb, metrics: dict) -> None:
    append_csv(out / "log.csv", metrics)
    if tb is not None:
        for k, v in metrics.items():
            if k != "step":
                tb.add_scalar(k, v, metrics["step"])
    print(" ".join(f"{k}={v}" for k, v in metrics.items()))


def main(cfg: TrainConfig) -> None:
    m = train(cfg)
    if m:
        more = " (time is up: the same command goes on from here)" if m["step"] < cfg.max_steps else ""
        print(f"{cfg.out}: step {m['step']}, held-out loss {m['heldout_loss']:.3f}, token acc {m['token_acc']:.3f}{more}")


def cli() -> None:
    run(main, TrainConfig)


if __name__ == "__main__":
    cli()
