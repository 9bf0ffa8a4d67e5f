"""Does MoC routing retrieve the earlier shots where a character was? A probe on the ground truth.

Generation quality and routing are separate questions; this one asks the second alone. The
model sees the exact render of a held-out storyboard, noised to one t (the same noise for every
model), in moc mode, and every layer's routed chunks are read (`trace`). For every shot s and
every character c in s that was also in an earlier shot, but not in all earlier shots:

    hits(query)  = the query's routed picks that fall in earlier shots showing c
    picks(query) = its routed picks that fall in any earlier shot (own shot and captions are
                   mandatory, never routed)

over all layers and heads, for two groups of the shot's video tokens: *character* queries (patches
at least a quarter covered by c) and *background* queries (patches no character touches). Both
groups share the shot's recency, location and framing, so background queries measure how much
routing favours c's shots for reasons other than c; the character queries' excess over them is
retrieval by content. Each (scene, shot, character) case scores 1 if the character share
hits/picks is higher than the background share, 0.5 if equal, 0 if lower: 0.5 is chance, as in
the other probes. Also reported, as means over cases: both shares, and the share that uniform
routing over earlier frames would give (`chance_share`).

`measure="attention"` asks the same of dense attention instead (mode dense; per query, the share
of its attention mass over earlier frames that lands on c's shots): whether the network, seeing
everything, looks at the character's earlier shots — the signal that routing could follow.

    python3 -m train.eval.retrieval --ckpt MODEL [MODEL ...] [--t 0.2,0.5,0.8] [--measure routes,attention]
"""
from __future__ import annotations

from typing import Callable, Dict, List, Optional, Sequence

import math

import numpy as np
import torch
import torch.nn.functional as F

from ..data import encode_scene, frames_to_model
from ..render import render_shot
from ..vocab import Vocab
from ..world import Scene
from .generate import Loaded, load_model, pick_device

COVER = 0.25  # a patch is a character query when at least this share of its pixels is c


def cases(scene: Scene) -> List[tuple]:
    """(shot, character, earlier shots showing it) for characters seen before, not everywhere before."""
    present = [{a.char for a in sh.actors} for sh in scene.shots]
    out = []
    for s in range(1, len(scene.shots)):
        for c in sorted(present[s]):
            with_c = [e for e in range(s) if c in present[e]]
            if 0 < len(with_c) < s:
                out.append((s, c, with_c))
    return out


def _patch_cover(mask: np.ndarray, p: int) -> np.ndarray:
    """bool [F, H, W] -> share of each p x p patch covered, [F, G*G] (row-major patches)."""
    F_, H, W = mask.shape
    return mask.reshape(F_, H // p, p, W // p, p).mean(axis=(2, 4)).reshape(F_, -1)


def _route_counts(trace: dict, depth: int, j: int, tokens: slice, n_chunks: int) -> torch.Tensor:
    """Routing picks of scene j's queries `tokens`, per chunk, over all layers, heads and slots:
    [n_queries, C] float."""
    r = torch.stack([trace[f"blocks.{i}.routed"][j, :, tokens] for i in range(depth)])  # [depth, H, nq, K]
    hot = F.one_hot(r.clamp(min=0), n_chunks) * (r >= 0)[..., None]  # [depth, H, nq, K, C]
    return hot.sum(dim=(0, 1, 3)).float()  # [nq, C]


def _attention_mass(
    trace: dict, depth: int, j: int, tokens: slice, key_chunk: torch.Tensor, n_chunks: int
) -> torch.Tensor:
    """Attention probability of scene j's queries `tokens` per key chunk, summed over layers and
    heads (the forward's own q and k, as rotated): [n_queries, C] float."""
    mass = None
    for i in range(depth):
        q = trace[f"blocks.{i}.attn.q"][j, :, tokens].float()  # [H, nq, D]
        k = trace[f"blocks.{i}.attn.k"][j].float()  # [H, N, D]
        prob = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1]), -1)  # [H, nq, N]
        per_chunk = torch.zeros(*prob.shape[:2], n_chunks, device=prob.device)
        per_chunk.index_add_(2, key_chunk, prob)  # [H, nq, C]
        mass = per_chunk.sum(0) if mass is None else mass + per_chunk.sum(0)
    return mass  # [nq, C]


MEASURES = ("routes", "attention")


@torch.no_grad()
def retrieval_probe(
    lm: Loaded,
    scenes: Sequence[Scene],
    *,
    device,
    chunk_frames: int,
    top_k: int,
    causal: bool,
    t: float = 0.5,
    seed: int = 0,
    batch: int = 16,
    measure: str = "routes",
    per_case: Optional[list] = None,
    on_trace: Optional[Callable] = None,
) -> Dict[str, float]:
    """The probe described in the module docstring. Returns {"score", "n", "char_share",
    "background_share", "chance_share", "t", "measure"}, each a mean over cases.

    measure "routes": MoC routing's picks (mode moc), the probe proper. "attention": the same
    question asked of *dense* attention (mode dense): the share of each query's attention mass
    over earlier frames that lands on the character's earlier shots — what the network attends
    to when it sees everything, i.e. what routing could at best follow.
    per_case: a list to receive one dict per case (scene index, score, char, bg) for intervals
    over storyboards; on_trace(first scene index, scenes, trace): sees each batch's trace."""
    if measure not in MEASURES:
        raise ValueError(f"measure must be one of {MEASURES}, got {measure!r}")
    model, cfg, vocab = lm.model, lm.cfg, Vocab()
    p, G = cfg.patch_size, cfg.image_size // cfg.patch_size
    frames = tuple(sh.frames for sh in scenes[0].shots)
    layout = model.layout(frames, chunk_frames)
    n_text, C = layout.n_text, len(layout.chunk_shot)
    chunk_shot = torch.as_tensor(layout.chunk_shot, device=device)  # [C]
    chunk_video = torch.as_tensor(layout.chunk_kind == 1, device=device)  # [C]
    key_chunk = torch.as_tensor(layout.token_chunk, device=device)  # [N]
    frame_start = np.concatenate([[0], np.cumsum(frames)])
    scores: List[float] = []
    tot = {"char": 0.0, "bg": 0.0, "chance": 0.0}
    gen = torch.Generator().manual_seed(seed)
    for b0 in range(0, len(scenes), batch):
        group = scenes[b0 : b0 + batch]
        rendered = [[render_shot(sc, i, cfg.image_size, masks=True) for i in range(len(sc.shots))] for sc in group]
        video = torch.from_numpy(np.stack([np.concatenate([f for f, _ in r], 0) for r in rendered]))
        x0 = frames_to_model(video).to(device)  # [B, T, 3, H, W]
        eps = torch.randn(x0.shape, generator=gen).to(device)
        xt = (1 - t) * x0 + t * eps
        text = torch.from_numpy(np.stack([encode_scene(sc, vocab, cfg.text_len) for sc in group])).to(device)
        t_shot = torch.full((len(group), len(frames)), t, device=device)
        trace: dict = {}
        if measure == "routes":
            model(
                xt,
                t_shot,
                text,
                frames=frames,
                mode="moc",
                chunk_frames=chunk_frames,
                top_k=top_k,
                causal=causal,
                trace=trace,
            )
        else:
            model(xt, t_shot, text, frames=frames, mode="dense", chunk_frames=chunk_frames, trace=trace)
        if on_trace is not None:
            on_trace(b0, group, trace)
        for j, sc in enumerate(group):
            by_shot: Dict[int, List[tuple]] = {}
            for s, c, with_c in cases(sc):
                by_shot.setdefault(s, []).append((c, with_c))
            for s, shot_cases in by_shot.items():
                f0, f1 = frame_start[s], frame_start[s + 1]
                vis = rendered[j][s][1]
                shot_tokens = slice(n_text + f0 * G * G, n_text + f1 * G * G)  # the shot's video queries
                m = (
                    _route_counts(trace, cfg.depth, j, shot_tokens, C)
                    if measure == "routes"
                    else _attention_mass(trace, cfg.depth, j, shot_tokens, key_chunk, C)
                )  # [F*G*G, C]
                earlier = chunk_video & (chunk_shot >= 0) & (chunk_shot < s)  # [C]
                bg = np.flatnonzero(_patch_cover(np.any(np.stack(list(vis.values())), 0), p) == 0)
                for c, with_c in shot_cases:
                    groups = {"char": np.flatnonzero(_patch_cover(vis[c], p) >= COVER), "bg": bg}
                    if len(groups["char"]) == 0 or len(groups["bg"]) == 0:
                        continue
                    in_c = earlier & torch.isin(chunk_shot, torch.as_tensor(with_c, device=device))  # [C]
                    share = {}
                    for name, tk in groups.items():
                        rows = m[torch.as_tensor(tk, device=device)]  # [n, C]
                        picks = float(rows[:, earlier].sum())
                        share[name] = float(rows[:, in_c].sum()) / picks if picks else None
                    if share["char"] is None or share["bg"] is None:
                        continue
                    tot["char"] += share["char"]
                    tot["bg"] += share["bg"]
                    scores.append(1.0 if share["char"] > share["bg"] else 0.5 if share["char"] == share["bg"] else 0.0)
                    if per_case is not None:
                        per_case.append(
                            {"scene": b0 + j, "score": scores[-1], "char": share["char"], "bg": share["bg"]}
                        )
                    tot["chance"] += sum(frames[e] for e in with_c) / float(frame_start[s])
    n = len(scores)
    return {
        "score": float(np.mean(scores)) if n else float("nan"),
        "n": n,
        "t": t,
        "measure": measure,
        "char_share": tot["char"] / max(1, n),
        "background_share": tot["bg"] / max(1, n),
        "chance_share": tot["chance"] / max(1, n),
    }


def markdown(r: Dict[str, float]) -> str:
    return (
        "| retrieval (routing on the ground truth, t = {t}) | score | cases | character queries' share "
        "| background queries' share | uniform share |\n|---|---|---|---|---|---|\n"
        "| moc | {score:.3f} | {n} | {char_share:.3f} | {background_share:.3f} | {chance_share:.3f} |\n"
    ).format(**r)


def main(argv=None) -> List[Dict[str, float]]:
    """`python3 -m train.eval.retrieval --ckpt MODEL [MODEL ...] [--t 0.2,0.5,0.8]`: the probe alone,
    on the eval's held-out storyboards, for each model and t (one line each, JSON)."""
    import argparse
    import json
    from .run import held_out_scenes

    p = argparse.ArgumentParser(description="MoC routing retrieval probe on held-out storyboards")
    p.add_argument("--ckpt", nargs="+", required=True, help="exported model folders or checkpoints")
    p.add_argument("--ema", action="store_true")
    p.add_argument("--t", default="0.2,0.5,0.8")
    p.add_argument("--storyboards", type=int, default=64)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--shots", type=int, default=4)
    p.add_argument("--frames", type=int, default=8)
    p.add_argument("--chunk-frames", type=int, default=1)
    p.add_argument("--top-k", type=int, default=4)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--device", default="auto")
    p.add_argument("--measure", default="routes", help="routes, attention, or both comma-separated")
    args = p.parse_args(argv)
    device = pick_device(args.device)
    scenes = held_out_scenes(args.storyboards, args.seed, args.shots, args.frames)
    out = []
    for path in args.ckpt:
        lm = load_model(path, ema=args.ema)
        lm.model.to(device)
        for measure in args.measure.split(","):
            for t in (float(x) for x in args.t.split(",")):
                r = retrieval_probe(
                    lm,
                    scenes,
                    device=device,
                    chunk_frames=args.chunk_frames,
                    top_k=args.top_k,
                    causal=True,
                    t=t,
                    seed=args.seed,
                    batch=args.batch,
                    measure=measure,
                )
                out.append({"model": path, **r})
                print(json.dumps(out[-1]), flush=True)
    return out


if __name__ == "__main__":
    main()
