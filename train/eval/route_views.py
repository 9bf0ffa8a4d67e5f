"""Routing views compared zero-shot on one model (MOC.md §3b, issue 17): for each view of q, k that
routing may score with, the retrieval probe (retrieval.py: does routing pick the earlier shots
that show a returning character, more for the character's patches than for background patches?)
and the recency correlation, on the same held-out storyboards, the same noise and the same
weights. Nothing is retrained: a model trained with one view is run with another.

Recency correlation, per video query of a shot s >= 1 in every layer and head, over its routing
candidates (the frames of earlier shots): the Pearson correlation of
    score   the routing score q_route . phi(K_route) of each candidate, or
    pick    1 where routing picked the candidate, 0 elsewhere
with recency, -(frames between the query's frame and the candidate). Positive: routing prefers
what is recent; 0: it does not care how long ago. Queries whose values do not vary (every
candidate picked, fewer than 3 candidates) are left out. A storyboard's value is the mean over
its queries, layers and heads.

Intervals: 95 % percentile bootstrap over storyboards (cases and queries stay with their
storyboard); differences against the first view use the same resamples (paired).

    nice /usr/bin/python3 -m train.eval.route_views --ckpt public/models/moc-base --storyboards 24 \
        --views spatial --out /tmp/spatial.json          (one run per view keeps each run short)
    /usr/bin/python3 -m train.eval.route_views --combine /tmp/rotary.json /tmp/spatial.json ...
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import time
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch

from .. import moc
from ..model import ROUTE_VIEWS, MoCDiT
from .generate import Loaded, load_model
from .retrieval import retrieval_probe

STATS = ("probe", "char_share", "bg_share", "gap", "recency_score", "recency_pick")


def with_route_view(lm: Loaded, view: str) -> Loaded:
    """The same weights, routing with `view`."""
    cfg = dataclasses.replace(lm.cfg, route_view=view)
    model = MoCDiT(cfg)
    model.load_state_dict(lm.model.state_dict())
    return Loaded(model.eval(), cfg, lm.info)


def _masked_corr(x: torch.Tensor, y: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    """Pearson correlation of x and y along the last dim over entries where m (bool); NaN where
    either does not vary or fewer than 3 entries count. x, y, m broadcast to [..., C] -> [...]."""
    m = m.to(x.dtype)
    n = m.sum(-1)
    mx = (x * m).sum(-1) / n.clamp(min=1)
    my = (y * m).sum(-1) / n.clamp(min=1)
    dx, dy = (x - mx[..., None]) * m, (y - my[..., None]) * m
    sxx, syy = (dx * dx).sum(-1), (dy * dy).sum(-1)
    r = (dx * dy).sum(-1) / (sxx * syy).sqrt()
    ok = (n >= 3) & (sxx > 1e-12 * n) & (syy > 1e-12 * n)
    return torch.where(ok, r, torch.full_like(r, float("nan")))


def recency(trace: dict, j: int, layout, depth: int, top_k: int) -> Dict[str, float]:
    """Scene j's recency correlations (module docstring) from a moc trace: {"score", "pick"}."""
    ch = moc.Chunks.from_layout(layout)
    G2 = layout.n_video // sum(layout.frames)
    video = layout.chunk_kind == 1
    vid_before = np.concatenate([[0], np.cumsum(np.where(video, layout.chunk_end - layout.chunk_start, 0))])[:-1]
    chunk_frame = torch.as_tensor(vid_before // G2, dtype=torch.float32)  # [C] first frame of each chunk
    first_later = layout.n_text + layout.frames[0] * G2  # internal order: text, then frames
    toks = torch.arange(first_later, layout.n_tokens)  # video queries of shots >= 1
    q_chunk = torch.as_tensor(layout.token_chunk)[toks]  # [nq]
    rec = -(chunk_frame[q_chunk][:, None] - chunk_frame[None, :])  # [nq, C]
    cand = moc.candidate_mask(ch, True)[toks]  # [nq, C]
    out = {"score": [], "pick": []}
    for i in range(depth):
        key = f"blocks.{i}.attn.q_route" if f"blocks.{i}.attn.q_route" in trace else f"blocks.{i}.attn.q"
        q = trace[key][j].float()  # [H, N, D]
        k = trace[key.replace(".q", ".k")][j].float()
        desc = moc.chunk_means(k[None], ch)[0]  # [H, C, D]
        score = q[:, toks] @ desc.transpose(-1, -2)  # [H, nq, C]
        routed = trace[f"blocks.{i}.routed"][j][:, toks]  # [H, nq, K]
        picked = moc.routed_table(routed[None], ch.n_chunks)[0].float()  # [H, nq, C]
        for name, x in (("score", score), ("pick", picked)):
            r = _masked_corr(x, rec.expand_as(x), cand.expand(x.shape))
            out[name].append(r[~torch.isnan(r)])
    return {name: float(torch.cat(v).mean()) if sum(len(x) for x in v) else float("nan") for name, v in out.items()}


def measure_view(
    lm: Loaded, view: str, scenes: Sequence, *, t: float, seed: int, top_k: int, chunk_frames: int, batch: int
) -> Dict[str, list]:
    """Per-storyboard values of one view: {"cases": [per-case dicts], "recency": [per scene]}."""
    lv = with_route_view(lm, view)
    frames = tuple(sh.frames for sh in scenes[0].shots)
    layout = lv.model.layout(frames, chunk_frames)
    cases: List[dict] = []
    rec: List[Optional[Dict[str, float]]] = [None] * len(scenes)

    def on_trace(b0, group, trace):
        for j in range(len(group)):
            rec[b0 + j] = recency(trace, j, layout, lv.cfg.depth, top_k)

    retrieval_probe(
        lv,
        scenes,
        device=torch.device("cpu"),
        chunk_frames=chunk_frames,
        top_k=top_k,
        causal=True,
        t=t,
        seed=seed,
        batch=batch,
        per_case=cases,
        on_trace=on_trace,
    )
    return {"cases": cases, "recency": rec}


def _stats(m: Dict[str, list], idx: np.ndarray) -> Dict[str, float]:
    """The statistics over the storyboards idx (with repeats, as a bootstrap draws them)."""
    count = np.bincount(idx, minlength=len(m["recency"]))
    w = np.array([count[c["scene"]] for c in m["cases"]], np.float64)
    cs = m["cases"]
    wm = lambda key: float(np.dot(w, [c[key] for c in cs]) / w.sum()) if w.sum() else float("nan")
    out = {"probe": wm("score"), "char_share": wm("char"), "bg_share": wm("bg")}
    out["gap"] = out["char_share"] - out["bg_share"]
    for name in ("score", "pick"):
        vals = np.array([m["recency"][i][name] for i in idx])
        out[f"recency_{name}"] = float(np.nanmean(vals))
    return out


def summarise(per_view: Dict[str, Dict[str, list]], n_scenes: int, reps: int = 2000, seed: int = 0) -> Dict[str, dict]:
    """Point estimates and 95 % bootstrap intervals per view, and paired differences to the first view."""
    rng = np.random.default_rng(seed)
    draws = [rng.integers(0, n_scenes, n_scenes) for _ in range(reps)]
    views = list(per_view)
    full = np.arange(n_scenes)
    boot = {v: [_stats(per_view[v], d) for d in draws] for v in views}
    ci = lambda xs: [float(np.nanpercentile(xs, 2.5)), float(np.nanpercentile(xs, 97.5))]
    out = {}
    for v in views:
        point = _stats(per_view[v], full)
        row = {"n_cases": len(per_view[v]["cases"])}
        for s in STATS:
            row[s] = point[s]
            row[s + "_ci"] = ci([b[s] for b in boot[v]])
            if v != views[0]:
                row[s + "_diff_ci"] = ci([b[s] - a[s] for a, b in zip(boot[views[0]], boot[v])])
        out[v] = row
    return out


def markdown(summary: Dict[str, dict]) -> str:
    f = lambda r, s: f"{r[s]:+.3f} [{r[s + '_ci'][0]:+.3f}, {r[s + '_ci'][1]:+.3f}]"
    lines = [
        "| routing view | retrieval probe | character share | background share | gap (char − bg) "
        "| recency corr. (score) | recency corr. (pick) |",
        "|---|---|---|---|---|---|---|",
    ]
    for v, r in summary.items():
        lines.append(f"| {v} | " + " | ".join(f(r, s) for s in STATS) + " |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> Dict[str, dict]:
    from .run import held_out_scenes

    p = argparse.ArgumentParser(description="Routing views compared zero-shot (retrieval, recency)")
    p.add_argument("--ckpt", help="exported model folder or checkpoint")
    p.add_argument(
        "--combine",
        nargs="+",
        metavar="JSON",
        help="summarise the --out files of earlier runs (same storyboards) together",
    )
    p.add_argument("--views", default=",".join(ROUTE_VIEWS))
    p.add_argument("--storyboards", type=int, default=32)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--shots", type=int, default=4)
    p.add_argument("--frames", type=int, default=8)
    p.add_argument("--t", type=float, default=0.5)
    p.add_argument("--top-k", type=int, default=4)
    p.add_argument("--chunk-frames", type=int, default=1)
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--reps", type=int, default=2000)
    p.add_argument("--out", default=None, help="write the summary and per-storyboard values as JSON")
    args = p.parse_args(argv)
    if args.combine:
        runs = [json.load(open(path)) for path in args.combine]
        n = {r["settings"]["storyboards"] for r in runs} | {r["settings"]["seed"] + 10**6 for r in runs}
        if len(n) != 2:
            raise SystemExit("--combine: the runs differ in --storyboards or --seed")
        per_view = {v: m for r in runs for v, m in r["per_view"].items()}
        summary = summarise(per_view, runs[0]["settings"]["storyboards"], args.reps, args.seed)
        print(markdown(summary))
        return summary
    if not args.ckpt:
        raise SystemExit("--ckpt is required (or --combine)")
    torch.set_num_threads(args.threads)
    t0 = time.time()
    lm = load_model(args.ckpt)
    scenes = held_out_scenes(args.storyboards, args.seed, args.shots, args.frames)
    per_view = {}
    for view in args.views.split(","):
        per_view[view] = measure_view(
            lm,
            view,
            scenes,
            t=args.t,
            seed=args.seed,
            top_k=args.top_k,
            chunk_frames=args.chunk_frames,
            batch=args.batch,
        )
        print(f"route_views: {view} measured ({time.time() - t0:.0f} s)", flush=True)
    summary = summarise(per_view, len(scenes), args.reps, args.seed)
    print(markdown(summary))
    wall = time.time() - t0
    print(f"route_views: {len(scenes)} storyboards, t = {args.t}, top_k {args.top_k}, {wall:.0f} s wall", flush=True)
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"settings": vars(args), "wall_s": wall, "summary": summary, "per_view": per_view}, f)
    return summary


if __name__ == "__main__":
    main()
