"""Versioned golden fixtures for the TypeScript model (tests/model/*): the PyTorch reference run
on a tiny random-weight model, saved small enough to commit.

    /usr/bin/python3 -m train.fixtures            (writes tests/fixtures/v1/)

tests/fixtures/v<VERSION>/
    meta.json              version, the regenerate command, config, frames, captions, options
    model/                 an exported model folder (export.py): config, vocab, fp16 weights, manifest
    fixture.safetensors    F32/I32 tensors, names below (N = internal token order: text, then video)
        x_t [T,3,Hi,Wi]  t_shot [S]  text [S+1,L] (ids of meta.captions)  frames [S]
        moc.blocks.{i}.text [Nt,d]   moc.blocks.{i}.video [Nv,d]   (stream outputs of block i)
        moc.blocks.{i}.routed [H,N,K]  (stream-order chunk ids, -1 unused; exact)
        moc.blocks.0.attn.{q,k,v,o} [H,N,D]  (q, k after RMS-norm and RoPE)
        velocity.{dense,moc,shot} [T,3,Hi,Wi]
        sampler.noise / sampler.keep [T,3,Hi,Wi], sampler.keep_shots [S], sampler.ts{1,2} [steps+1]
        sampler.steps{1,2} [T,3,Hi,Wi]: train.sample.sample(steps=1|2, guidance, mode moc) from
            that noise, shot 0 held fixed at sampler.keep (values on the u8 grid: k/127.5 - 1)
    route-views.safetensors  the same model, inputs and moc options with each non-default routing
        view (MOC.md §3b, model.ROUTE_VIEWS; config route_view), one forward each:
        {view}.velocity [T,3,Hi,Wi]   {view}.blocks.{i}.routed [H,N,K] (stream chunk ids, exact)
        {view}.blocks.0.attn.{q_route,k_route} [H,N,D]; x_t [T,3,Hi,Wi] (its own seed, the first
        from the model's seed on whose routing no view has near-ties); __metadata__ x_seed,
        {view}.routingMinGap
The model's weights are the fp16 ones read back (load_exported), exactly what TS computes with.
The seed is the first whose routing has no near-ties (gap between consecutive top-(K+1) scores
of every query in every model call ≥ MIN_GAP), so f32 rounding cannot change a routing choice.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
from typing import Dict, List

import numpy as np
import torch

from . import moc, safetensors_io
from .export import export_model, load_exported, random_model
from .model import ROUTE_VIEWS, MoCDiT, make_config
from .sample import sample
from .vocab import Vocab

VERSION = 1
COMMAND = "/usr/bin/python3 -m train.fixtures"
MIN_GAP = 4e-3
# dim 64 / heads 2: head dim 32, the smallest the WGSL attention kernels take
CONFIG = dict(image_size=16, patch_size=4, dim=64, depth=2, heads=2, mlp_ratio=2.0, text_len=8, t_freq_dim=32, top_k=2)
FRAMES = (2, 3, 2)
OPTIONS = dict(top_k=2, chunk_frames=1, causal=True)
GUIDANCE = 3.0
T_SHOT = (0.0, 0.45, 0.9)
SEEDS = (11, 22, 33)
CAPTIONS = {
    "global": "Character 1 is a red star.",
    "shots": [
        "Character 1 bounces in the meadow.",
        "Character 1 spins, close-up.",
        "Character 1 moves left on the beach.",
    ],
}


def routing_gap(trace: dict, ch: moc.Chunks, top_k: int, causal: bool, view: str = "") -> float:
    """Smallest gap between consecutive scores among the top-(K+1) candidates of any query
    (scores of the routing view's q, k when `view` is "_route")."""
    cand = moc.candidate_mask(ch, causal)  # [N, C]
    gap = float("inf")
    for name, q in trace.items():
        if not name.endswith(".attn.q" + view):
            continue
        k = trace[name.replace(".attn.q", ".attn.k")]
        desc = moc.chunk_means(k, ch)  # [B, H, C, D]
        s = torch.matmul(q.float(), desc.transpose(-1, -2)).masked_fill(~cand, float("-inf"))
        top = torch.sort(s, -1, descending=True).values[..., : top_k + 1]  # [B, H, N, K+1]
        d = top[..., :-1] - top[..., 1:]
        d = d[torch.isfinite(d)]
        if d.numel():
            gap = min(gap, float(d.min()))
    return gap


class _Recorder:
    """Wraps the model for sample(): records the routing gap of every call."""

    def __init__(self, model, ch):
        self.model, self.cfg, self.ch, self.gap = model, model.cfg, ch, float("inf")

    def __call__(self, *a, **kw):
        tr: dict = {}
        out = self.model(*a, trace=tr, **kw)
        if kw.get("mode") == "moc":
            self.gap = min(self.gap, routing_gap(tr, self.ch, OPTIONS["top_k"], OPTIONS["causal"]))
        return out


def _u8_grid(x: torch.Tensor) -> torch.Tensor:
    return ((x.clamp(-1, 1) + 1) * 127.5).round() / 127.5 - 1


def build(seed: int, model) -> tuple:
    cfg = model.cfg
    S, T = len(FRAMES), sum(FRAMES)
    size = cfg.image_size
    vocab = Vocab()
    caps = [CAPTIONS["global"]] + CAPTIONS["shots"]
    enc = [vocab.encode(c, cfg.text_len) for c in caps]
    assert not any(e.unknown for e in enc)
    text = torch.tensor([[e.ids for e in enc]], dtype=torch.long)  # [1, S+1, L]
    g = torch.Generator().manual_seed(seed)
    x_t = torch.randn(1, T, cfg.channels, size, size, generator=g)
    t_shot = torch.tensor([T_SHOT], dtype=torch.float32)
    layout = model.layout(FRAMES, OPTIONS["chunk_frames"])
    ch = moc.Chunks.from_layout(layout)
    kw = dict(frames=FRAMES, backend="plain", **OPTIONS)
    out: Dict[str, torch.Tensor] = {"x_t": x_t[0], "t_shot": t_shot[0], "text": text[0], "frames": torch.tensor(FRAMES)}
    gap = float("inf")
    with torch.no_grad():
        for mode in ("dense", "moc", "shot"):
            tr: dict = {}
            out[f"velocity.{mode}"] = model(x_t, t_shot, text, mode=mode, trace=tr, **kw)[0]
            if mode == "moc":
                gap = min(gap, routing_gap(tr, ch, OPTIONS["top_k"], OPTIONS["causal"]))
                for i in range(cfg.depth):
                    for s in ("text", "video", "routed"):
                        out[f"moc.blocks.{i}.{s}"] = tr[f"blocks.{i}.{s}"][0]
                for s in "qkvo":
                    out[f"moc.blocks.0.attn.{s}"] = tr[f"blocks.0.attn.{s}"][0]
        noise = torch.cat(
            [
                torch.randn(1, f, cfg.channels, size, size, generator=torch.Generator().manual_seed(sd))
                for f, sd in zip(FRAMES, SEEDS)
            ],
            1,
        )
        keep = _u8_grid(torch.randn(1, T, cfg.channels, size, size, generator=g) * 0.6)
        keep_shots = [True] + [False] * (S - 1)
        rec = _Recorder(model, ch)
        for steps in (1, 2):
            out[f"sampler.steps{steps}"] = sample(
                rec,
                text,
                FRAMES,
                steps=steps,
                guidance=GUIDANCE,
                mode="moc",
                seeds=SEEDS,
                keep=keep,
                keep_shots=keep_shots,
                backend="plain",
                chunk_frames=OPTIONS["chunk_frames"],
                top_k=OPTIONS["top_k"],
                causal=OPTIONS["causal"],
            )[0]
            out[f"sampler.ts{steps}"] = torch.linspace(1.0, 0.0, steps + 1)
        gap = min(gap, rec.gap)
        out["sampler.noise"], out["sampler.keep"] = noise[0], keep[0]
        out["sampler.keep_shots"] = torch.tensor(keep_shots, dtype=torch.int32)
    return out, gap, enc


def build_route_views(seed: int, model) -> tuple:
    """The moc forward of `build` with every non-default routing view, x_t drawn from `seed`:
    (tensors, gap per view)."""
    cfg = model.cfg
    size, T = cfg.image_size, sum(FRAMES)
    text = torch.tensor([[Vocab().encode(c, cfg.text_len).ids for c in [CAPTIONS["global"]] + CAPTIONS["shots"]]])
    x_t = torch.randn(1, T, cfg.channels, size, size, generator=torch.Generator().manual_seed(seed))
    t_shot = torch.tensor([T_SHOT], dtype=torch.float32)
    ch = moc.Chunks.from_layout(model.layout(FRAMES, OPTIONS["chunk_frames"]))
    out: Dict[str, torch.Tensor] = {"x_t": x_t[0]}
    gaps: Dict[str, float] = {}
    for view in ROUTE_VIEWS[1:]:
        m = MoCDiT(dataclasses.replace(cfg, route_view=view)).eval()
        m.load_state_dict(model.state_dict())
        tr: dict = {}
        with torch.no_grad():
            out[f"{view}.velocity"] = m(
                x_t, t_shot, text, mode="moc", trace=tr, frames=FRAMES, backend="plain", **OPTIONS
            )[0]
        gaps[view] = routing_gap(tr, ch, OPTIONS["top_k"], OPTIONS["causal"], "_route")
        for i in range(cfg.depth):
            out[f"{view}.blocks.{i}.routed"] = tr[f"blocks.{i}.routed"][0]
        for s in ("q_route", "k_route"):
            out[f"{view}.blocks.0.attn.{s}"] = tr[f"blocks.0.attn.{s}"][0]
    return out, gaps


def _np(t: torch.Tensor) -> np.ndarray:
    a = t.detach().cpu().numpy()
    return a.astype(np.int32) if a.dtype.kind in "iub" else a.astype(np.float32)


def write(out_dir: str, seeds: List[int] = list(range(200))) -> dict:
    torch.set_num_threads(max(1, min(4, torch.get_num_threads())))
    cfg = make_config("tiny", **CONFIG)
    root = os.path.join(out_dir, f"v{VERSION}")
    model_dir = os.path.join(root, "model")
    for seed in seeds:
        shutil.rmtree(root, ignore_errors=True)
        export_model(
            random_model(cfg, seed),
            cfg,
            model_dir,
            "fixture-tiny",
            {"randomInit": seed, "description": "random weights, for tests only"},
        )
        model, _, _ = load_exported(model_dir)  # the fp16 weights, as f32
        tensors, gap, enc = build(seed, model)
        if gap >= MIN_GAP:
            break
    else:
        raise RuntimeError(f"no seed in {seeds[0]}..{seeds[-1]} gives routing gaps >= {MIN_GAP}")
    safetensors_io.save(
        os.path.join(root, "fixture.safetensors"), {k: _np(v) for k, v in tensors.items()}, {"version": str(VERSION)}
    )
    for x_seed in range(seed, seed + 100):
        views, gaps = build_route_views(x_seed, model)
        if min(gaps.values()) >= MIN_GAP:
            break
    else:
        raise RuntimeError(f"no x_t seed in {seed}..{seed + 99} gives routing-view gaps >= {MIN_GAP}")
    safetensors_io.save(
        os.path.join(root, "route-views.safetensors"),
        {k: _np(v) for k, v in views.items()},
        {"version": str(VERSION), "x_seed": str(x_seed), **{f"{v}.routingMinGap": repr(g) for v, g in gaps.items()}},
    )
    meta = {
        "version": VERSION,
        "command": COMMAND,
        "seed": seed,
        "torch": torch.__version__,
        "config": cfg.to_dict(),
        "frames": list(FRAMES),
        **OPTIONS,
        "guidance": GUIDANCE,
        "t_shot": list(T_SHOT),
        "seeds": list(SEEDS),
        "keepShots": [True] + [False] * (len(FRAMES) - 1),
        "captions": CAPTIONS,
        "ids": [e.ids for e in enc],
        "routingMinGap": gap,
        "note": "regenerate with the command; the TS tests read version and files from here",
    }
    with open(os.path.join(root, "meta.json"), "w") as f:
        json.dump(meta, f, indent=1)
        f.write("\n")
    return meta


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="tests/fixtures", help="parent folder of v<VERSION>/")
    a = p.parse_args(argv)
    meta = write(a.out)
    total = sum(
        os.path.getsize(os.path.join(dp, f)) for dp, _, fs in os.walk(os.path.join(a.out, f"v{VERSION}")) for f in fs
    )
    print(
        f"fixtures: wrote {a.out}/v{VERSION} (seed {meta['seed']}, routing gap {meta['routingMinGap']:.3g}, "
        f"{total} bytes)"
    )


if __name__ == "__main__":
    main()
