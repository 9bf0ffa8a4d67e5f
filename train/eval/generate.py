"""Load the model under evaluation and generate the held-out scenes in one attention mode.

Model sources (`--ckpt`):
    a trainer checkpoint   directory with ckpt.json, the ckpt.json itself, or a torch file
                           (export.load_checkpoint_model; --ema takes the EMA weights)
    an exported folder     config.json + model.safetensors (fp16) + manifest.json (export.load_exported)
    random:<config>        seeded random weights of a named config (export.random_model), for smoke
                           runs and for seeing what an untrained model scores
Generation batches scenes of the same shot layout through the project's sampler (sample.py);
the noise of shot s in batch j comes from a generator seeded by (seed, j, s), the same for every
mode, so dense, moc and shot start from the same noise. Attention cost is counted as MOC.md says:
4*D FLOPs per (query, key) pair actually visited plus, in moc mode, 2*D per (query, candidate
chunk) for routing, summed over layers, heads, sampler steps and both guidance passes, from the
sparsity every layer reports.
"""
from __future__ import annotations

import os
import time
from contextlib import nullcontext
from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

import numpy as np
import torch

from .. import checkpoint, moc
from ..data import encode_scene, frames_to_model, model_to_frames
from ..export import load_checkpoint_model, load_exported, random_model
from ..model import CONFIGS, MoCDiT, ModelConfig, make_config
from ..train import parse_schedule
from ..vocab import Vocab
from ..world import Scene


@dataclass
class Loaded:
    model: MoCDiT
    cfg: ModelConfig
    info: dict  # source, path, step, ema, train_seed, shots, frames, chunk_frames, top_k, causal


def _train_args(path: str) -> dict:
    """The trainer's argparse namespace saved in a checkpoint ({} when there is none)."""
    if os.path.isdir(path) or os.path.basename(path) == checkpoint.INDEX:
        state = checkpoint.load(path if os.path.isdir(path) else os.path.dirname(path))
    else:
        state = checkpoint.load_torch(path)
    return dict(state.get("args") or {}) if isinstance(state, dict) else {}


def load_model(spec: str, ema: bool = False, seed: int = 0) -> Loaded:
    """A model and what is known about its training (see the module docstring for `spec`)."""
    info = {"path": spec, "ema": bool(ema), "step": None, "train_seed": None}
    args: dict = {}
    if spec.startswith("random:"):
        name = spec.split(":", 1)[1] or "tiny"
        if name not in CONFIGS:
            raise ValueError(f"--ckpt {spec}: unknown config {name!r} (have {sorted(CONFIGS)})")
        if ema:
            raise ValueError("--ema: a random-init model has no EMA weights")
        cfg = make_config(name)
        model = random_model(cfg, seed)
        info.update(source="random", config=name)
    elif os.path.isdir(spec) and os.path.exists(os.path.join(spec, "model.safetensors")):
        if ema:
            raise ValueError(
                f"--ema: {spec} is an exported folder; it holds the one set of weights "
                "the exporter chose (export with --ema to evaluate the EMA)"
            )
        model, cfg, meta = load_exported(spec)
        info.update(source="export", name=meta.get("name"), step=meta.get("step"), ema=meta.get("ema", False))
        args = {k: meta[k] for k in ("seed", "shots", "frames", "schedule") if k in meta}
    elif os.path.exists(spec):
        model, cfg, meta = load_checkpoint_model(spec, None, ema)
        args = _train_args(spec)
        info.update(source="checkpoint", step=meta["step"])
    else:
        raise FileNotFoundError(f"--ckpt {spec}: no such checkpoint or model folder")
    chunk_frames, top_k = cfg.chunk_frames, cfg.top_k
    stages = parse_schedule(args["schedule"]) if args.get("schedule") else []
    if stages and stages[-1][0] == "moc":  # the routing it was trained to end with
        chunk_frames, top_k = stages[-1][1], stages[-1][2]
    info.update(
        train_seed=args.get("seed"),
        shots=args.get("shots"),
        frames=args.get("frames"),
        chunk_frames=chunk_frames,
        top_k=top_k,
        causal=cfg.causal,
    )
    return Loaded(model.eval(), cfg, info)


def noise_seeds(seed: int, batch_index: int, shots: int) -> List[int]:
    return [int(x) for x in np.random.SeedSequence([seed, batch_index]).generate_state(shots)]


def attention_flops(stats: Sequence[float], layout, heads: int, head_dim: int, mode: str, causal: bool) -> float:
    """FLOPs of one video: stats = the sparsity of every layer of every model call (sample.py)."""
    N = layout.n_tokens
    total = 4.0 * head_dim * heads * float(N) * N * sum(1.0 - s for s in stats)  # visited (query, key) pairs
    if mode == "moc":
        cand = moc.candidate_mask(moc.Chunks.from_layout(layout), causal)  # [N, C]
        total += 2.0 * head_dim * heads * float(cand.sum()) * len(stats)  # routing scores
    return total


def pick_device(name: str) -> torch.device:
    """--device: "auto" is CUDA where there is one, else the CPU; anything else as named."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def generate(
    lm: Loaded,
    scenes: Sequence[Scene],
    mode: str,
    *,
    steps: int,
    guidance: float,
    seed: int,
    batch: int,
    device: torch.device,
    chunk_frames: int,
    top_k: int,
    causal: bool,
    keep_first: Optional[Sequence[np.ndarray]] = None,
    amp: bool = False,
    warmup: bool = False,
) -> Tuple[List[np.ndarray], dict]:
    """Videos uint8 [T, H, W, 3] of `scenes` in `mode`, and {"seconds", "sparsity", "attention_flops"}
    (flops per video). keep_first: ground-truth videos whose shot 0 is kept as a condition."""
    from ..sample import sample

    cfg, vocab = lm.cfg, Vocab()
    frames = tuple(s.frames for s in scenes[0].shots)
    if any(tuple(s.frames for s in sc.shots) != frames for sc in scenes):
        raise ValueError("every evaluated scene must have the same shot layout")
    keep_shots = [True] + [False] * (len(frames) - 1) if keep_first is not None else None
    kw = dict(
        frames=frames,
        steps=steps,
        guidance=guidance,
        mode=mode,
        chunk_frames=chunk_frames,
        top_k=top_k,
        causal=causal,
        keep_shots=keep_shots,
    )
    ctx = torch.autocast("cuda", dtype=torch.bfloat16) if amp and device.type == "cuda" else nullcontext()
    videos: List[np.ndarray] = []
    seconds, sparsity, flops = 0.0, [], []
    for j, b0 in enumerate(range(0, len(scenes), batch)):
        group = scenes[b0 : b0 + batch]
        text = torch.from_numpy(np.stack([encode_scene(sc, vocab, cfg.text_len) for sc in group])).to(device)
        keep = None
        if keep_first is not None:
            keep = frames_to_model(torch.from_numpy(np.stack(keep_first[b0 : b0 + batch]))).to(device)
        if warmup and j == 0:  # kernels, caches, allocator
            with ctx:
                sample(
                    lm.model,
                    text[:1],
                    seeds=noise_seeds(seed, j, len(frames)),
                    keep=None if keep is None else keep[:1],
                    **{**kw, "steps": 1},
                )
        stats: List[float] = []
        _sync(device)
        t0 = time.perf_counter()
        with ctx:
            x = sample(lm.model, text, seeds=noise_seeds(seed, j, len(frames)), keep=keep, stats=stats, **kw)
        _sync(device)
        seconds += time.perf_counter() - t0
        videos += list(model_to_frames(x.float()).cpu().numpy())  # [T, H, W, 3] each
        sparsity += stats
        flops += [
            attention_flops(stats, lm.model.layout(frames, chunk_frames), cfg.heads, cfg.head_dim, mode, causal)
        ] * len(group)
    return videos, {
        "seconds": seconds,
        "sparsity": float(np.mean(sparsity)) if sparsity else 0.0,
        "attention_flops": float(np.mean(flops)),
    }
