"""Trainer: rectified flow on the procedural world, dense warm-up then MoC with progressive
sparsification and context drop-off / drop-in (MODEL.md "Training", MOC.md §2).

    /usr/bin/python3 -m train.train --config tiny --device cpu --steps 2 --out train/runs/smoke
    torchrun --nproc_per_node=N -m train.train --config base --steps auto --budget 1000 \
        --out train/runs/base --resume --time-limit 540

Schedule (--schedule): comma-separated stages "dense@END", "shot@END" or
"<chunkFrames>x<topK>@END", each running until END (exclusive, global step); the last stage may
omit @END and runs to the end. END is a step count, or a fraction of --steps when it has a
decimal point ("dense@0.4,8x2@0.5,1x4").
--steps auto --budget SECONDS (fresh runs only): before step 0 every distinct stage is timed for
a few full steps at lr 0 on the first batch (the model and optimiser are restored afterwards),
and --steps is set so that the whole schedule fits the budget. The chosen --steps is stored in
the checkpoint, so a resumed run (--resume) continues the same schedule and the same lr curve.
Per-shot timesteps: each sample draws one of three regimes (--t-regimes weights): all shots
share one t (joint generation), every shot its own t, or a random prefix of shots clean (t = 0,
conditions, as when the studio appends a shot) and the rest sharing one t. t ~ logit-normal.
The loss is the MSE of the velocity over the frames of shots with t > 0. --fg-weight W weighs the
squared error of the characters' pixels (data.character_mask) 1 + W times the background's:
characters cover a few per cent of a frame, so unweighted they hardly move the loss. A constant
weight biases x̂0 towards the characters where their place is uncertain (they come out too big);
--fg-decay linear lowers W to 0 at the last step, so the EMA ends on the unweighted objective.
--shot-lengths 4,8,12: every step draws one tuple of per-shot lengths from that set that sums to
--shots x --frames (data.ShotLengths: uniform over all such tuples, a function of (seed, step),
the same for every item and rank of the step); the token count, hence --compile's shapes and
--steps auto's timing, stays that of --shots x --frames. Logged as "frames" per logged step.
World and objective (all off by default; the run is then what it was before they existed):
--world v2 trains on world v2 (world.py), --oracle-captions captions size and pattern too (a
larger vocabulary and text_len >= ORACLE_TEXT_LEN; both recorded in config.json by export.py);
--prefix-t, --x0-weight, --aux-weight and --curriculum are the levers of objective.py.
Logs one JSON object per line (stdout and <out>/log.jsonl); `data_wait` is the fraction of
wall time the loop spent waiting for the DataLoader (near 0 when data is not the bottleneck).
Checkpoints in <out> (checkpoint.py) every --ckpt-every steps, at the end, and when
--time-limit seconds have passed. --carry DIR also writes a compact checkpoint there (f32
weights, EMA as a bf16 difference, no optimiser state: small enough to leave the GPU machine
through $OUT and come back with `carry`); --resume takes <out>'s checkpoint, else --resume-from's.
Distributed: under torchrun (WORLD_SIZE > 1) with NCCL on CUDA, gloo on CPU.
"""
from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import math
import os
import time
from contextlib import nullcontext
from functools import lru_cache
from typing import List, Optional, Tuple, Union

import torch
import torch.distributed as dist
import torch.nn.functional as F

from . import checkpoint, objective
from .data import ShotLengths, WorldDataset, batch as make_batch, frames_to_model, make_loader, parse_shot_lengths
from .model import CONFIGS, ROUTE_VIEWS, MoCDiT, compile_blocks, count_parameters, make_config
from .vocab import Vocab

ORACLE_TEXT_LEN = 32  # "Character 1 is a large halved red star." x 3 = 27 tokens


# ---- schedule -------------------------------------------------------------------------------
def parse_schedule(text: str) -> List[Tuple[str, int, int, Optional[Union[int, float]]]]:
    """ "dense@100,8x6@200,1x4" -> [("dense", 0, 0, 100), ("moc", 8, 6, 200), ("moc", 1, 4, None)].
    An end with a decimal point is a fraction of the run ("dense@0.4" -> 0.4); see resolve_schedule."""
    stages = []
    for part in text.split(","):
        spec, _, until = part.strip().partition("@")
        try:
            end = None if not until else float(until) if "." in until else int(until)
        except ValueError:
            raise ValueError(f"bad schedule stage {part!r}: END must be a step or a fraction") from None
        if isinstance(end, float) and not 0.0 < end < 1.0:
            raise ValueError(f"bad schedule stage {part!r}: a fractional END must lie in (0, 1)")
        if spec in ("dense", "shot"):
            stages.append((spec, 0, 0, end))
        else:
            cf, _, k = spec.partition("x")
            if not (cf.isdigit() and k.isdigit() and int(cf) >= 1):
                raise ValueError(f"bad schedule stage {part!r}: use dense@END or <chunkFrames>x<topK>@END")
            stages.append(("moc", int(cf), int(k), end))
    ends = [st[3] for st in stages]
    if len({type(e) for e in ends if e is not None}) > 1:
        raise ValueError(f"schedule ends must be all steps or all fractions: {text!r}")
    for a, b in zip(stages, stages[1:]):
        if a[3] is None or (b[3] is not None and b[3] <= a[3]):
            raise ValueError(f"schedule stage ends must increase; only the last may omit @END: {text!r}")
    return stages


def resolve_schedule(stages, steps: int):
    """Fractional ends -> step counts for a run of `steps` steps (step ends pass through)."""
    return [(m, cf, k, round(end * steps) if isinstance(end, float) else end) for m, cf, k, end in stages]


def stage_fractions(stages, steps: int) -> List[float]:
    """Share of the run each stage takes."""
    out, prev = [], 0
    for st in resolve_schedule(stages, steps):
        end = steps if st[3] is None else min(st[3], steps)
        out.append(max(0, end - prev) / max(1, steps))
        prev = max(prev, end)
    return out


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
@lru_cache(maxsize=32)
def _const(values: tuple, dtype, device: str) -> torch.Tensor:
    """A small constant tensor made once per device: a per-step torch.tensor(list, device=cuda)
    is a pageable host -> device copy, which waits for the GPU."""
    return torch.tensor(values, dtype=dtype, device=device)


@lru_cache(maxsize=1024)
def frame_shot_index(frames: tuple, device: str) -> torch.Tensor:
    """[T] shot of every frame (one per --shot-lengths tuple: a miss copies host -> device)."""
    return torch.repeat_interleave(torch.arange(len(frames)), torch.tensor(frames)).to(device)


def sample_timesteps(B: int, S: int, regimes, gen: torch.Generator, device) -> torch.Tensor:
    """[B, S] per-shot timesteps in (0, 1), with clean (t = 0) prefixes in the third regime."""
    t_ind = torch.sigmoid(torch.randn(B, S, generator=gen, device=device))  # independent
    t_shared = torch.sigmoid(torch.randn(B, 1, generator=gen, device=device)).expand(B, S)
    w = _const(tuple(regimes), torch.float32, str(device))
    regime = torch.multinomial(w.expand(B, 3), 1, generator=gen)[:, 0]  # [B]
    n_clean = (torch.rand(B, generator=gen, device=device) * max(S - 1, 0)).long() + 1  # 1..S-1
    clean = torch.arange(S, device=device)[None, :] < n_clean[:, None]  # [B, S]
    t = torch.where((regime == 1)[:, None], t_ind, t_shared)
    if S > 1:
        t = torch.where((regime == 2)[:, None] & clean, torch.zeros_like(t), t)
    return t


def fg_weight_at(step: int, args) -> float:
    """--fg-weight at `step` (--fg-decay linear: falls to 0 at --steps)."""
    if args.fg_decay == "linear":
        return args.fg_weight * max(0.0, 1.0 - step / max(1, int(args.steps)))
    return args.fg_weight


def flow_loss(model, x0, text, frames, stage, args, gen: torch.Generator, stats=None, fg=None, fg_weight=0.0, aux=None):
    """Rectified-flow velocity MSE over the frames of noisy shots. x0 [B, T, 3, H, W]; fg
    [B, T, H, W] characters' pixels (0/1) weighted 1 + fg_weight, or None. aux: (AuxHead,
    cover, labels) adds --aux-weight times its loss (objective.py), or None."""
    B, T = x0.shape[:2]
    S = len(frames)
    device = x0.device
    if args.caption_dropout > 0:
        drop = torch.rand(B, generator=gen, device=device) < args.caption_dropout
        text = torch.where(drop[:, None, None], torch.zeros_like(text), text)  # all <pad> = null
    t_shot = sample_timesteps(B, S, args.t_regimes, gen, device)  # [B, S]
    t_shot = objective.prefix_t(t_shot, getattr(args, "prefix_t", None), gen)
    t = t_shot[:, frame_shot_index(tuple(frames), str(device))]  # [B, T]
    eps = torch.randn(x0.shape, generator=gen, device=device)
    tt = t[:, :, None, None, None]
    xt = (1 - tt) * x0 + tt * eps
    mode, cf, k, _ = stage
    moc_kw = {}
    if mode == "moc":
        moc_kw = dict(chunk_frames=cf, top_k=k, drop_off=args.drop_off, drop_in=args.drop_in, generator=gen)
    amp = (
        torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" and args.amp == "bf16" else nullcontext()
    )
    capture = objective.HiddenCapture(model) if aux is not None else nullcontext()
    with amp, capture:
        v = model(
            xt,
            t_shot,
            text,
            frames=frames,
            mode=mode,
            backend=args.backend,
            q_tile=args.q_tile,
            checkpoint=args.attn_checkpoint,
            stats=stats,
            **moc_kw,
        )
    se = (v.float() - (eps - x0)).pow(2).mean(dim=2)  # [B, T, H, W]
    if fg is not None and fg_weight > 0:
        se = se * (1 + fg_weight * fg.float())
    se = se.mean(dim=(2, 3))  # [B, T]
    w = (t > 0).float()
    r = objective.frame_weights(t, t_shot, getattr(args, "x0_weight", 0.0))
    loss = (se * w * r).sum() / w.sum().clamp(min=1.0)
    if aux is not None:
        head, cover, labels = aux
        head.last = head.loss(capture.h, cover, labels, w)  # logged as aux_loss
        loss = loss + args.aux_weight * head.last
    return loss


# ---- main -----------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description="Train the MoC DiT on the procedural world.")
    a = p.add_argument
    a("--config", default="small", choices=sorted(CONFIGS))
    a("--image-size", type=int)
    a("--patch-size", type=int)
    a("--dim", type=int)
    a("--depth", type=int)
    a("--heads", type=int)
    a(
        "--route-view",
        default=None,
        choices=ROUTE_VIEWS,
        help="the view of q, k routing scores with (MOC.md 3b): rotary (default: as attention uses "
        "them), spatial (without the temporal rotation) or unrotated",
    )
    a("--shots", type=int, default=4)
    a("--frames", type=int, default=8)
    a(
        "--shot-lengths",
        default=None,
        metavar="F,F,...",
        help="train on shots of these lengths: each step draws per-shot lengths from this set that sum "
        "to shots x frames (default: every shot has --frames frames)",
    )
    a("--batch-size", type=int, default=8, help="per process")
    a("--steps", default="1000", help="total optimiser steps (the run's end), or 'auto' with --budget")
    a(
        "--budget",
        type=float,
        default=0.0,
        help="with --steps auto: seconds of training in total (all resumed runs together)",
    )
    a("--lr", type=float, default=3e-4)
    a("--warmup", type=int, default=200)
    a("--min-lr-frac", type=float, default=0.1)
    a("--weight-decay", type=float, default=0.01)
    a("--grad-clip", type=float, default=1.0)
    a("--ema", type=float, default=0.999)
    a("--schedule", default="dense@0.4,8x2@0.5,4x3@0.62,2x4@0.76,1x4")
    a(
        "--drop-off",
        type=float,
        default=0.5,
        help="p_max of context drop-off (MoC stages): drops floor(U(0, p_max) * k) routed chunks, "
        "so p_max * k must exceed 1 to drop anything (0.5: never at k = 2, 1/3 of queries at k = 3, half at k = 4)",
    )
    a("--drop-in", type=float, default=0.5, help="Poisson lambda of context drop-in (MoC stages)")
    a("--caption-dropout", type=float, default=0.1)
    a(
        "--causal-text",
        action="store_true",
        help="MoC stages: each shot's queries see only the captions of it and earlier shots (MOC.md §3b); "
        "recorded in the config, so the export's config.json says causal_text: true",
    )
    a(
        "--fg-weight",
        type=float,
        default=0.0,
        help="extra loss weight of the characters' pixels (1 + W times the background's; 0: off)",
    )
    a("--fg-decay", default="none", choices=["none", "linear"], help="linear: --fg-weight falls to 0 at the last step")
    a("--t-regimes", default="0.4,0.3,0.3", help="weights: shared t, per-shot t, clean prefix")
    a("--world", default="v1", choices=["v1", "v2"], help="world version (world.py; v2: learnable hidden attributes)")
    a(
        "--oracle-captions",
        action="store_true",
        help="caption each character's size class and pattern (oracle vocabulary, text_len >= 32)",
    )
    a(
        "--prefix-t",
        default=None,
        metavar="MEAN,STD",
        help="clean-prefix samples: t of the noisy shots ~ sigmoid(MEAN + STD z) (objective.py; default off)",
    )
    a(
        "--x0-weight",
        type=float,
        default=0.0,
        metavar="G",
        help="clean-prefix samples: weigh noisy frames by t^(2G), mean 1 (G = 1: the x̂0 error; 0: off)",
    )
    a(
        "--aux-weight",
        type=float,
        default=0.0,
        help="training-only head predicting recurring characters' hidden attributes (0: off; never exported)",
    )
    a(
        "--curriculum",
        type=int,
        default=0,
        metavar="STEPS",
        help="redraw scenes for the first STEPS steps: next-shot recurrences first, longer gaps and framing changes later",
    )
    a("--device", default="auto")
    a("--amp", default="bf16", choices=["bf16", "none"])
    a("--backend", default="auto", choices=["auto", "plain", "sdpa", "flex"])
    a("--q-tile", type=int, default=1024)
    a("--compile", action="store_true", help="torch.compile the blocks around attention (PyTorch >= 2)")
    a("--attn-checkpoint", type=int, default=None, help="1/0; default on for CUDA")
    a("--out", default="train/runs/default")
    a("--resume", action="store_true")
    a("--resume-from", default=None, help="with --resume: checkpoint dir to use when <out> has none")
    a(
        "--init-from",
        default=None,
        metavar="MODEL_DIR",
        help="start a new run (step 0, fresh optimiser, EMA = weights) from an exported model folder "
        "(public/models/<name>/); its config must match --config. Ignored when a checkpoint resumes",
    )
    a("--carry", default=None, metavar="DIR", help="also write a compact checkpoint to DIR at every save")
    a("--ckpt-every", type=int, default=500)
    a("--ckpt-part-mb", type=float, default=15.0)
    a("--ckpt-slim", action="store_true", help="leave the optimiser state out of checkpoints")
    a("--time-limit", type=float, default=0.0, help="seconds; save and stop after this long")
    a("--log-every", type=int, default=10)
    a("--workers", type=int, default=4)
    a("--threads", type=int, default=0, help="torch CPU threads (0: leave as is)")
    a("--calib-steps", type=int, default=6, help="--steps auto: timed steps per stage (after 2 warm-up)")
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


def _sync(device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def init_from_export(model: MoCDiT, ema: List[torch.Tensor], folder: str) -> None:
    """Copies an exported model folder's weights (fp16, usually the EMA) into `model` and `ema`."""
    from .export import load_exported

    exported, cfg, _ = load_exported(folder)
    # neither the routing view nor causal_text holds weights: a run may start from a model trained
    # with other settings of them
    if dataclasses.replace(cfg, route_view=model.cfg.route_view, causal_text=model.cfg.causal_text) != model.cfg:
        raise SystemExit(
            f"--init-from {folder}: its config differs from this run's " f"({cfg.to_dict()} vs {model.cfg.to_dict()})"
        )
    with torch.no_grad():
        for p, e, q in zip(model.parameters(), ema, exported.parameters()):
            p.copy_(q)
            e.copy_(q)


def make_optimizer(model, args, head=None):
    params = list(model.parameters()) + (list(head.parameters()) if head is not None else [])
    return torch.optim.AdamW(params, lr=args.lr, betas=(0.9, 0.99), weight_decay=args.weight_decay)


def train_step(net, model, opt, x0, text, frames, stage, args, gen, stats=None, fg=None, fg_weight=0.0, aux=None):
    loss = flow_loss(net, x0, text, frames, stage, args, gen, stats, fg, fg_weight, aux)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    params = list(model.parameters())
    if aux is not None:  # the head is outside DDP: average its gradients
        head_params = [p for p in aux[0].parameters() if p.grad is not None]
        if dist.is_initialized() and dist.get_world_size() > 1:
            for p in head_params:
                dist.all_reduce(p.grad)
                p.grad /= dist.get_world_size()
        params += head_params
    gnorm = torch.nn.utils.clip_grad_norm_(params, args.grad_clip)
    opt.step()
    return loss, gnorm


def calibrate(net, model, opt, x0, text, frames, stages, args, device, fg=None, aux=None) -> dict:
    """Seconds per full training step of every distinct stage, timed on one batch at lr 0.
    Leaves the weights as they were (the caller makes a fresh optimiser)."""
    snapshot = {k: v.detach().clone() for k, v in model.state_dict().items()}
    for group in opt.param_groups:
        group["lr"] = 0.0
    times = {}
    for stage in stages:
        key = stage[:3]
        if key in times:
            continue
        for i in range(2 + args.calib_steps):
            if i == 2:
                _sync(device)
                t0 = time.time()
            gen = torch.Generator(device=device)
            gen.manual_seed(i)
            train_step(net, model, opt, x0, text, frames, stage, args, gen, fg=fg, fg_weight=args.fg_weight, aux=aux)
        _sync(device)
        times[key] = (time.time() - t0) / args.calib_steps
    with torch.no_grad():
        model.load_state_dict(snapshot)
    opt.zero_grad(set_to_none=True)
    return times


def steps_for_budget(stages, times: dict, seconds: float) -> int:
    """How many steps of this schedule (fractional ends) fit in `seconds`."""
    big = 10**6
    per_step = sum(f * times[st[:3]] for f, st in zip(stage_fractions(stages, big), stages))
    return max(1, int(seconds / per_step))


def setup_run(args):
    """Finishes parsed flags and the process: --t-regimes as numbers, torch threads, the device
    and process group (_setup), --attn-checkpoint's default (on for CUDA). -> rank, world, device."""
    args.t_regimes = [float(x) for x in args.t_regimes.split(",")]
    try:
        args.prefix_t = objective.parse_pair(args.prefix_t, "--prefix-t")
    except ValueError as e:
        raise SystemExit(str(e)) from None
    if args.threads:
        torch.set_num_threads(args.threads)
    rank, world, device = _setup(args)
    if args.attn_checkpoint is None:
        args.attn_checkpoint = int(device.type == "cuda")
    return rank, world, device


def main(argv: Optional[List[str]] = None) -> List[dict]:
    args = build_parser().parse_args(argv)
    rank, world, device = setup_run(args)
    stages = parse_schedule(args.schedule)
    auto = args.steps == "auto"
    if auto and args.budget <= 0:
        raise SystemExit("--steps auto needs --budget SECONDS")
    if auto and any(isinstance(st[3], int) for st in stages):
        raise SystemExit("--steps auto needs fractional schedule ends (e.g. dense@0.4,2x4@0.7,1x4)")
    oracle = {}
    if args.oracle_captions:
        oracle = dict(
            vocab_size=len(Vocab(oracle=True)), text_len=max(ORACLE_TEXT_LEN, CONFIGS[args.config].get("text_len", 0))
        )
    cfg = make_config(
        args.config,
        image_size=args.image_size,
        patch_size=args.patch_size,
        dim=args.dim,
        depth=args.depth,
        heads=args.heads,
        route_view=args.route_view,
        causal_text=True if args.causal_text else None,
        **oracle,
    )
    try:
        lengths = ShotLengths(args.shots, args.frames, parse_shot_lengths(args.shot_lengths), args.seed)
    except ValueError as e:
        raise SystemExit(f"--shot-lengths {args.shot_lengths}: {e}") from None

    torch.manual_seed(args.seed)  # same init on every rank
    model = MoCDiT(cfg).to(device)
    ema = [p.detach().clone().float() for p in model.parameters()]
    head = objective.AuxHead(cfg.dim).to(device) if args.aux_weight > 0 else None
    opt = make_optimizer(model, args, head)
    step = 0
    state, resumed_from = None, None
    if args.resume:
        for d in [args.out] + ([args.resume_from] if args.resume_from else []):
            try:
                state = checkpoint.load(d)
            except checkpoint.UnsafeCheckpoint as e:
                raise SystemExit(f"train: --resume: {e}") from None
            if state is not None:
                resumed_from = d
                break
    if state is not None:
        model.load_state_dict(state["model"])
        for e, v in zip(ema, state["ema"]):
            e.copy_(v)
        if head is not None and state.get("aux") is not None:
            head.load_state_dict(state["aux"])
        if state.get("opt") is not None:
            opt.load_state_dict(state["opt"])
        step = int(state["step"])
        if auto:
            args.steps = int(state["args"]["steps"])
    elif args.init_from:
        init_from_export(model, ema, args.init_from)
    if not auto:
        args.steps = int(args.steps)
    if args.compile:
        compile_blocks(model)
    net = model
    if world > 1:
        net = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None
        )

    t_start = time.time()
    dataset = WorldDataset(
        args.seed,
        args.shots,
        args.frames,
        cfg.image_size,
        cfg.text_len,
        masks=args.fg_weight > 0,
        lengths=lengths,
        step_items=args.batch_size * world,
        world=int(args.world[1:]),
        oracle=args.oracle_captions,
        curriculum=objective.Curriculum(args.curriculum, args.shots) if args.curriculum else None,
        aux_patch=cfg.patch_size if head is not None else 0,
    )

    def unpack(items):
        """A batch -> video, text, fg (or None), aux (or None)."""
        video, text, *extra = items
        fg = extra.pop(0).to(device, non_blocking=True) if dataset.masks else None  # [B, T, H, W]
        aux = (head, *(e.to(device, non_blocking=True) for e in extra)) if head is not None else None
        return video, text, fg, aux

    stop = 10**9 if args.steps == "auto" else args.steps
    if args.fixed_batch:
        fixed = make_batch(dataset, range(rank * args.batch_size, (rank + 1) * args.batch_size))
        batches = itertools.repeat(fixed)
    else:
        batches = iter(
            make_loader(dataset, step, stop, args.batch_size, rank, world, args.workers, device.type == "cuda")
        )
    log_path = os.path.join(args.out, "log.jsonl")

    logs: List[dict] = []

    def log(rec: dict) -> None:
        logs.append(rec)
        if rank == 0:
            print(json.dumps(rec), flush=True)
            with open(log_path, "a") as f:
                f.write(json.dumps(rec) + "\n")

    if rank == 0:
        os.makedirs(args.out, exist_ok=True)
    if args.steps == "auto":  # fresh run: time the stages, fix --steps
        first = next(batches)
        video, text, fg, aux = unpack(first)
        times = calibrate(
            net,
            model,
            opt,
            frames_to_model(video.to(device)),
            text.to(device),
            lengths.frames_at(step),
            stages,
            args,
            device,
            fg,
            aux,
        )
        steps = torch.tensor([steps_for_budget(stages, times, args.budget - (time.time() - t_start))])
        if world > 1:
            steps = steps.to(device)
            dist.broadcast(steps, 0)
        args.steps = int(steps)
        opt = make_optimizer(model, args, head)
        batches = itertools.chain([first], batches)
        log(
            {
                "event": "calibrate",
                "sec_per_step": {f"{m}:{cf}x{k}": t for (m, cf, k), t in times.items()},
                "budget": args.budget,
                "steps": args.steps,
                "elapsed": time.time() - t_start,
            }
        )
    stages = resolve_schedule(stages, args.steps)
    log(
        {
            "event": "start",
            "step": step,
            "world": world,
            "device": str(device),
            "params": count_parameters(model),
            "config": cfg.to_dict(),
            "args": vars(args),
            "schedule": stages,
            "shot_length_tuples": len(lengths.tuples),
            "resumed_from": resumed_from,
            "init_from": args.init_from if state is None else None,
            "optimizer_state": "restored" if state is not None and state.get("opt") is not None else "fresh",
            "torch": torch.__version__,
        }
    )

    def save():
        if rank != 0:
            return
        full = {
            "step": step,
            "model": model.state_dict(),
            "ema": [e.cpu() for e in ema],
            "opt": None if args.ckpt_slim else opt.state_dict(),
            "config": cfg.to_dict(),
            "args": vars(args),
        }
        if head is not None:
            full["aux"] = head.state_dict()  # training only: export reads "model"/"ema"
        checkpoint.save(args.out, full, args.ckpt_part_mb)
        if args.carry:
            names = [n for n, _ in model.named_parameters()]
            checkpoint.save(args.carry, checkpoint.compact(full, names), args.ckpt_part_mb)

    t_last = time.time()
    last_step = step
    wait = 0.0
    stopped_early = False
    while step < args.steps:
        t_wait = time.time()
        video, text, fg, aux = unpack(next(batches))
        wait += time.time() - t_wait
        x0 = frames_to_model(video.to(device, non_blocking=True))  # [B, T, 3, H, W]
        text = text.to(device, non_blocking=True)  # [B, S+1, L]
        si, stage = stage_at(stages, step)
        frames = lengths.frames_at(0 if args.fixed_batch else step)  # the batch's shot lengths
        gen = torch.Generator(device=device)
        gen.manual_seed((args.seed * 1_000_003 + (0 if args.fixed_batch else step)) * 1009 + rank)
        for group in opt.param_groups:
            group["lr"] = lr_at(step, args)
        do_log = (step + 1) % args.log_every == 0 or step + 1 == args.steps or step == 0
        stats = [] if do_log and stage[0] != "dense" else None
        fg_w = fg_weight_at(step, args)
        loss, gnorm = train_step(net, model, opt, x0, text, frames, stage, args, gen, stats, fg, fg_w, aux)
        with torch.no_grad():
            decay = min(args.ema, (1 + step) / (10 + step))
            params = [p.detach() for p in model.parameters()]
            torch._foreach_mul_(ema, decay)
            torch._foreach_add_(ema, [p.float() for p in params], alpha=1 - decay)
        step += 1
        if do_log:
            l = loss.detach().clone()
            if world > 1:
                dist.all_reduce(l)
                l /= world
            now = time.time()
            rec = {
                "step": step,
                "loss": float(l),
                "lr": lr_at(step - 1, args),
                "fg_weight": fg_w,
                "stage": si,
                "mode": stage[0],
                "chunk_frames": stage[1],
                "top_k": stage[2],
                "frames": list(frames),
                "sparsity": (sum(stats) / len(stats)) if stats else 0.0,
                "grad_norm": float(gnorm),
                "sec_per_step": (now - t_last) / max(1, step - last_step),
                "samples_per_sec": (step - last_step) * args.batch_size * world / max(1e-9, now - t_last),
                "data_wait": wait / max(1e-9, now - t_last),
                "elapsed": now - t_start,
            }
            if head is not None:
                rec["aux_loss"] = float(head.last)  # its cross-entropy (in "loss" x aux_weight)
            t_last, last_step, wait = now, step, 0.0
            log(rec)
        if args.ckpt_every and step % args.ckpt_every == 0 and step < args.steps:
            save()
        if args.time_limit and time.time() - t_start > args.time_limit:
            stopped_early = step < args.steps
            break
    save()
    with torch.no_grad():
        checksum = float(sum(p.double().abs().sum() for p in model.parameters()))
    end = {
        "event": "end",
        "step": step,
        "steps": args.steps,
        "stopped_early": stopped_early,
        "elapsed": time.time() - t_start,
        "param_checksum": checksum,
    }
    log(end)
    if world > 1:
        dist.barrier()
    return logs


if __name__ == "__main__":
    main()
