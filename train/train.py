"""Trainer: rectified flow on the procedural world, dense warm-up then MoC with progressive
sparsification and context drop-off / drop-in (MODEL.md "Training", MOC.md §2).

    /usr/bin/python3 -m train.train --config tiny --device cpu --steps 2 --out train/runs/smoke
    torchrun --nproc_per_node=N -m train.train --config small --steps 20000 --out train/runs/small --resume

Schedule (--schedule): comma-separated stages "dense@STEP" or "<chunkFrames>x<topK>@STEP", each
running until STEP (exclusive, global step); the last stage may omit @STEP and runs to the end.
Per-shot timesteps: each sample draws one of three regimes (--t-regimes weights): all shots
share one t (joint generation), every shot its own t, or a random prefix of shots clean (t = 0,
conditions, as when the studio appends a shot) and the rest sharing one t. t ~ logit-normal.
The loss is the MSE of the velocity over the frames of shots with t > 0.
Logs one JSON object per line (stdout and <out>/log.jsonl). Checkpoints in <out> (checkpoint.py)
every --ckpt-every steps, at the end, and when --time-limit seconds have passed.
Distributed: under torchrun (WORLD_SIZE > 1) with NCCL on CUDA, gloo on CPU.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import time
from contextlib import nullcontext
from typing import List, Optional, Tuple

import torch
import torch.distributed as dist
import torch.nn.functional as F

from . import checkpoint
from .data import WorldDataset, batch as make_batch, frames_to_model, make_loader
from .model import CONFIGS, MoCDiT, count_parameters, make_config


# ---- schedule -------------------------------------------------------------------------------
def parse_schedule(text: str) -> List[Tuple[str, int, int, Optional[int]]]:
    """"dense@100,8x6@200,1x4" -> [("dense", 0, 0, 100), ("moc", 8, 6, 200), ("moc", 1, 4, None)]."""
    stages = []
    for part in text.split(","):
        spec, _, until = part.strip().partition("@")
        end = int(until) if until else None
        if spec == "dense":
            stages.append(("dense", 0, 0, end))
        elif spec == "shot":
            stages.append(("shot", 0, 0, end))
        else:
            cf, _, k = spec.partition("x")
            if not (cf.isdigit() and k.isdigit() and int(cf) >= 1):
                raise ValueError(f"bad schedule stage {part!r}: use dense@STEP or <chunkFrames>x<topK>@STEP")
            stages.append(("moc", int(cf), int(k), end))
    for a, b in zip(stages, stages[1:]):
        if a[3] is None or (b[3] is not None and b[3] <= a[3]):
            raise ValueError(f"schedule stage ends must increase; only the last may omit @STEP: {text!r}")
    return stages


def stage_at(stages, step: int):
    for i, st in enumerate(stages):
        if st[3] is None or step < st[3]:
            return i, st
    return len(stages) - 1, stages[-1]


def lr_at(step: int, args) -> float:
    if step < args.warmup:
        return args.lr * (step + 1) / args.warmup
    frac = min(1.0, (step - args.warmup) / max(1, args.steps - args.warmup))
    return args.lr * (args.min_lr_frac + (1 - args.min_lr_frac) * 0.5 * (1 + math.cos(math.pi * frac)))


# ---- timesteps ------------------------------------------------------------------------------
def sample_timesteps(B: int, S: int, regimes, gen: torch.Generator, device) -> torch.Tensor:
    """[B, S] per-shot timesteps in (0, 1), with clean (t = 0) prefixes in the third regime."""
    t_ind = torch.sigmoid(torch.randn(B, S, generator=gen, device=device))   # independent
    t_shared = torch.sigmoid(torch.randn(B, 1, generator=gen, device=device)).expand(B, S)
    w = torch.tensor(regimes, dtype=torch.float32, device=device)
    regime = torch.multinomial(w.expand(B, 3), 1, generator=gen)[:, 0]       # [B]
    n_clean = (torch.rand(B, generator=gen, device=device) * max(S - 1, 0)).long() + 1  # 1..S-1
    clean = torch.arange(S, device=device)[None, :] < n_clean[:, None]        # [B, S]
    t = torch.where((regime == 1)[:, None], t_ind, t_shared)
    if S > 1:
        t = torch.where((regime == 2)[:, None] & clean, torch.zeros_like(t), t)
    return t


def flow_loss(model, x0, text, frames, stage, args, gen: torch.Generator, stats=None):
    """Rectified-flow velocity MSE over the frames of noisy shots. x0 [B, T, 3, H, W]."""
    B, T = x0.shape[:2]
    S = len(frames)
    device = x0.device
    if args.caption_dropout > 0:
        drop = torch.rand(B, generator=gen, device=device) < args.caption_dropout
        text = torch.where(drop[:, None, None], torch.zeros_like(text), text)  # all <pad> = null
    t_shot = sample_timesteps(B, S, args.t_regimes, gen, device)             # [B, S]
    frame_shot = torch.repeat_interleave(torch.arange(S, device=device), torch.tensor(frames, device=device))
    t = t_shot[:, frame_shot]                                                 # [B, T]
    eps = torch.randn(x0.shape, generator=gen, device=device)
    tt = t[:, :, None, None, None]
    xt = (1 - tt) * x0 + tt * eps
    mode, cf, k, _ = stage
    moc_kw = {}
    if mode == "moc":
        moc_kw = dict(chunk_frames=cf, top_k=k, drop_off=args.drop_off, drop_in=args.drop_in, generator=gen)
    amp = (torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" and args.amp == "bf16"
           else nullcontext())
    with amp:
        v = model(xt, t_shot, text, frames=frames, mode=mode, backend=args.backend, q_tile=args.q_tile,
                  checkpoint=args.attn_checkpoint, stats=stats, **moc_kw)
    se = (v.float() - (eps - x0)).pow(2).mean(dim=(2, 3, 4))                  # [B, T]
    w = (t > 0).float()
    return (se * w).sum() / w.sum().clamp(min=1.0)


# ---- main -----------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description="Train the MoC DiT on the procedural world.")
    a = p.add_argument
    a("--config", default="small", choices=sorted(CONFIGS))
    a("--image-size", type=int); a("--patch-size", type=int); a("--dim", type=int)
    a("--depth", type=int); a("--heads", type=int)
    a("--shots", type=int, default=4); a("--frames", type=int, default=8)
    a("--batch-size", type=int, default=8, help="per process")
    a("--steps", type=int, default=1000, help="total optimiser steps (the run's end)")
    a("--lr", type=float, default=3e-4); a("--warmup", type=int, default=200)
    a("--min-lr-frac", type=float, default=0.1); a("--weight-decay", type=float, default=0.01)
    a("--grad-clip", type=float, default=1.0); a("--ema", type=float, default=0.999)
    a("--schedule", default="dense@2000,8x6@3000,4x5@4000,2x4@5000,1x4")
    a("--drop-off", type=float, default=0.3, help="p_max of context drop-off (MoC stages)")
    a("--drop-in", type=float, default=0.5, help="Poisson lambda of context drop-in (MoC stages)")
    a("--caption-dropout", type=float, default=0.1)
    a("--t-regimes", default="0.4,0.3,0.3", help="weights: shared t, per-shot t, clean prefix")
    a("--device", default="auto"); a("--amp", default="bf16", choices=["bf16", "none"])
    a("--backend", default="auto", choices=["auto", "plain", "sdpa", "flex"])
    a("--q-tile", type=int, default=1024)
    a("--attn-checkpoint", type=int, default=None, help="1/0; default on for CUDA")
    a("--out", default="train/runs/default"); a("--resume", action="store_true")
    a("--ckpt-every", type=int, default=500); a("--ckpt-part-mb", type=float, default=15.0)
    a("--ckpt-slim", action="store_true", help="leave the optimiser state out of checkpoints")
    a("--time-limit", type=float, default=0.0, help="seconds; save and stop after this long")
    a("--log-every", type=int, default=10); a("--workers", type=int, default=4)
    a("--threads", type=int, default=0, help="torch CPU threads (0: leave as is)")
    a("--seed", type=int, default=0)
    a("--fixed-batch", action="store_true", help="one batch, noise and t for every step (smoke tests)")
    return p


def _setup(args):
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    dev = args.device
    if dev == "auto":
        dev = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(f"cuda:{local}" if dev == "cuda" else dev)
    if device.type == "cuda":
        torch.cuda.set_device(device)
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return rank, world, device


def main(argv: Optional[List[str]] = None) -> List[dict]:
    args = build_parser().parse_args(argv)
    args.t_regimes = [float(x) for x in args.t_regimes.split(",")]
    if args.threads:
        torch.set_num_threads(args.threads)
    rank, world, device = _setup(args)
    if args.attn_checkpoint is None:
        args.attn_checkpoint = int(device.type == "cuda")
    stages = parse_schedule(args.schedule)
    cfg = make_config(args.config, image_size=args.image_size, patch_size=args.patch_size,
                      dim=args.dim, depth=args.depth, heads=args.heads)
    frames = (args.frames,) * args.shots

    torch.manual_seed(args.seed)                       # same init on every rank
    model = MoCDiT(cfg).to(device)
    ema = [p.detach().clone().float() for p in model.parameters()]
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, betas=(0.9, 0.99),
                            weight_decay=args.weight_decay)
    step = 0
    state = checkpoint.load(args.out) if args.resume else None
    if state is not None:
        model.load_state_dict(state["model"])
        for e, v in zip(ema, state["ema"]):
            e.copy_(v)
        if state.get("opt") is not None:
            opt.load_state_dict(state["opt"])
        step = int(state["step"])
    net = model
    if world > 1:
        net = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None)

    dataset = WorldDataset(args.seed, args.shots, args.frames, cfg.image_size, cfg.text_len)
    if args.fixed_batch:
        fixed = make_batch(dataset, range(rank * args.batch_size, (rank + 1) * args.batch_size))
        batches = iter([fixed] * max(0, args.steps - step))
    else:
        batches = iter(make_loader(dataset, step, args.steps, args.batch_size, rank, world,
                                   args.workers, device.type == "cuda"))
    log_path = os.path.join(args.out, "log.jsonl")
    if rank == 0:
        os.makedirs(args.out, exist_ok=True)
        info = {"event": "start", "step": step, "world": world, "device": str(device),
                "params": count_parameters(model), "config": cfg.to_dict(), "args": vars(args),
                "torch": torch.__version__}
        print(json.dumps(info), flush=True)
        with open(log_path, "a") as f:
            f.write(json.dumps(info) + "\n")

    def save():
        if rank == 0:
            checkpoint.save(args.out, {"step": step, "model": model.state_dict(), "ema": [e.cpu() for e in ema],
                                       "opt": None if args.ckpt_slim else opt.state_dict(),
                                       "config": cfg.to_dict(), "args": vars(args)}, args.ckpt_part_mb)

    logs: List[dict] = []
    t_start = t_last = time.time()
    last_step = step
    stopped_early = False
    while step < args.steps:
        video, text = next(batches)
        x0 = frames_to_model(video.to(device, non_blocking=True))           # [B, T, 3, H, W]
        text = text.to(device, non_blocking=True)                            # [B, S+1, L]
        si, stage = stage_at(stages, step)
        gen = torch.Generator(device=device)
        gen.manual_seed((args.seed * 1_000_003 + (0 if args.fixed_batch else step)) * 1009 + rank)
        for group in opt.param_groups:
            group["lr"] = lr_at(step, args)
        do_log = (step + 1) % args.log_every == 0 or step + 1 == args.steps or step == 0
        stats = [] if do_log and stage[0] != "dense" else None
        loss = flow_loss(net, x0, text, frames, stage, args, gen, stats)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        gnorm = torch.nn.utils.clip_grad_norm_(model.parameters(), args.grad_clip)
        opt.step()
        with torch.no_grad():
            decay = min(args.ema, (1 + step) / (10 + step))
            for e, p in zip(ema, model.parameters()):
                e.mul_(decay).add_(p.detach().float(), alpha=1 - decay)
        step += 1
        if do_log:
            l = loss.detach().clone()
            if world > 1:
                dist.all_reduce(l)
                l /= world
            now = time.time()
            rec = {"step": step, "loss": float(l), "lr": lr_at(step - 1, args), "stage": si,
                   "mode": stage[0], "chunk_frames": stage[1], "top_k": stage[2],
                   "sparsity": (sum(stats) / len(stats)) if stats else 0.0, "grad_norm": float(gnorm),
                   "sec_per_step": (now - t_last) / max(1, step - last_step),
                   "samples_per_sec": (step - last_step) * args.batch_size * world / max(1e-9, now - t_last),
                   "elapsed": now - t_start}
            t_last, last_step = now, step
            logs.append(rec)
            if rank == 0:
                print(json.dumps(rec), flush=True)
                with open(log_path, "a") as f:
                    f.write(json.dumps(rec) + "\n")
        if args.ckpt_every and step % args.ckpt_every == 0 and step < args.steps:
            save()
        if args.time_limit and time.time() - t_start > args.time_limit:
            stopped_early = step < args.steps
            break
    save()
    with torch.no_grad():
        checksum = float(sum(p.double().abs().sum() for p in model.parameters()))
    end = {"event": "end", "step": step, "stopped_early": stopped_early, "elapsed": time.time() - t_start,
           "param_checksum": checksum}
    logs.append(end)
    if rank == 0:
        print(json.dumps(end), flush=True)
        with open(log_path, "a") as f:
            f.write(json.dumps(end) + "\n")
    if world > 1:
        dist.barrier()
    return logs


if __name__ == "__main__":
    main()
