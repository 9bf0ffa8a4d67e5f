"""Does the network use an earlier shot? The x̂0 error on a recurring character with shot 0 shown
vs hidden (CPU, seconds for a small model).

    /usr/bin/python3 -m train.memory_loss --model public/models/moc-tiny --world 2 --scenes 32
    /usr/bin/python3 -m train.memory_loss --ckpt train/runs/x [--ema] ...

Held-out two-shot scenes (seeds from data.EVAL_SEED_BASE + PROBE_OFFSET) in which a character
of shot 0 appears again in shot 1. Shot 1 is noised to x_t = (1 - t) x0 + t eps (fixed eps);
the network sees shot 0 either clean (t = 0, the clean-prefix regime) or hidden (replaced by
pure noise at t = 1: nothing of it left). Per scene and t it measures the squared error of shot
1's x̂0 = x_t - t v (model scale, [-1, 1]) on the recurring characters'
pixels (fg) and on the pixels no character covers (bg), and
    gain = error(hidden) - error(clean)    (> 0: shot 0 helps; 0: the network ignores it).
Reports means over scenes with 95 % intervals (mean ± 1.96 standard errors; one scene, one
sample, so scenes are independent) as one JSON line per t. This is the issue-16 stand-in for
the counterfactual-memory probe of train/eval where that has not landed: it says whether shot 0
lowers the loss where only memory can, not which attribute the network copies.
"""
from __future__ import annotations

import argparse
import json
import os
from typing import List, Optional

import numpy as np
import torch

from .data import EVAL_SEED_BASE, encode_scene, frames_to_model, scene_seed
from .objective import recurrences
from .render import render_shot
from .vocab import Vocab
from .world import Scene, sample_scene

PROBE_OFFSET = 16_016


def probe_scenes(n: int, version: int, frames: int) -> List[Scene]:
    """The first n held-out two-shot scenes where a character of shot 0 recurs in shot 1."""
    out, i = [], 0
    while len(out) < n:
        s = sample_scene(scene_seed(EVAL_SEED_BASE + PROBE_OFFSET, i), shots=2, frames=frames, version=version)
        if any(a == 0 and b == 1 for _, a, b, _c in recurrences(s)):
            out.append(s)
        i += 1
    return out


def _interval(x: np.ndarray) -> List[float]:
    m = float(x.mean())
    h = 1.96 * float(x.std(ddof=1)) / np.sqrt(len(x)) if len(x) > 1 else float("nan")
    return [round(m, 5), round(m - h, 5), round(m + h, 5)]


@torch.no_grad()
def measure(
    model,
    cfg,
    scenes: List[Scene],
    ts,
    oracle: bool = False,
    seed: int = 0,
    mode: str = "dense",
    per_scene: bool = False,
) -> List[dict]:
    """One row per t (module docstring). mode: the model's attention mode ("shot": no attention
    across shots, so every gain is exactly 0; the probe's floor). per_scene: also every scene's
    gain (fg_gain_scenes, bg_gain_scenes), for paired comparisons of models (paired_gain)."""
    vocab = Vocab(oracle=oracle)
    F = scenes[0].shots[0].frames
    videos, fgs, bgs, texts = [], [], [], []
    for s in scenes:
        shots = [render_shot(s, i, cfg.image_size, masks=True) for i in range(2)]
        videos.append(np.concatenate([f for f, _ in shots], 0))
        recurring = {a.char for a in s.shots[0].actors} & {a.char for a in s.shots[1].actors}
        vis = shots[1][1]
        fgs.append(np.any([vis[c] for c in recurring], axis=0))
        bgs.append(~np.any([m for m in vis.values()], axis=0) if vis else np.ones_like(fgs[-1]))
        texts.append(encode_scene(s, vocab, cfg.text_len, oracle))
    x0 = frames_to_model(torch.from_numpy(np.stack(videos)))  # [B, 2F, 3, H, W]
    fg = torch.from_numpy(np.stack(fgs)).float()  # [B, F, H, W]
    bg = torch.from_numpy(np.stack(bgs)).float()
    text = torch.from_numpy(np.stack(texts))
    B = x0.shape[0]
    gen = torch.Generator().manual_seed(seed)
    rows = []
    for t in ts:
        eps = torch.randn(x0.shape, generator=gen)
        xt1 = (1 - t) * x0[:, F:] + t * eps[:, F:]
        err = {}
        for name, first, t0 in (("clean", x0[:, :F], 0.0), ("hidden", eps[:, :F], 1.0)):
            video = torch.cat([first, xt1], 1)
            t_shot = torch.tensor([[t0, t]] * B)
            v = model(video, t_shot, text, frames=(F, F), mode=mode)
            x0_hat = xt1 - t * v[:, F:].float()
            se = (x0_hat - x0[:, F:]).pow(2).mean(2)  # [B, F, H, W]
            err[name] = {
                k: ((se * m).sum((1, 2, 3)) / m.sum((1, 2, 3)).clamp(min=1)).numpy()
                for k, m in (("fg", fg), ("bg", bg))
            }
        row = {"t": t, "scenes": B}
        for k in ("fg", "bg"):
            row[f"{k}_clean"] = _interval(err["clean"][k])
            row[f"{k}_hidden"] = _interval(err["hidden"][k])
            row[f"{k}_gain"] = _interval(err["hidden"][k] - err["clean"][k])
            if per_scene:
                row[f"{k}_gain_scenes"] = [round(float(x), 6) for x in err["hidden"][k] - err["clean"][k]]
        rows.append(row)
    return rows


def paired_gain(a: dict, b: dict, key: str = "fg") -> List[float]:
    """Gain of row b minus row a (same t, scenes and noise), mean and 95 % interval over scenes:
    the noise of the scenes themselves cancels."""
    x, y = np.array(a[f"{key}_gain_scenes"]), np.array(b[f"{key}_gain_scenes"])
    if a["t"] != b["t"] or len(x) != len(y):
        raise ValueError("paired_gain: rows of different t or scene counts")
    return _interval(y - x)


def main(argv: Optional[List[str]] = None) -> List[dict]:
    from .export import load_checkpoint_model, load_exported

    p = argparse.ArgumentParser(prog="python3 -m train.memory_loss", description=__doc__.split("\n")[0])
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--model", help="exported model folder (public/models/NAME)")
    src.add_argument("--ckpt", help="trainer checkpoint directory")
    p.add_argument("--ema", action="store_true", help="with --ckpt: the EMA weights")
    p.add_argument("--world", type=int, default=None, help="world version (default: the model's, else 1)")
    p.add_argument("--scenes", type=int, default=32)
    p.add_argument("--frames", type=int, default=4)
    p.add_argument("--t", default="0.3,0.6,0.9", help="noise levels of shot 1")
    p.add_argument(
        "--mode",
        default="dense",
        choices=["dense", "shot"],
        help="attention mode (shot: no cross-shot attention, the floor)",
    )
    p.add_argument("--per-scene", action="store_true", help="also every scene's gain (for paired_gain)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", default=None, help="also append the JSON lines to this file")
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    if a.model:
        model, cfg, meta = load_exported(a.model)
    else:
        model, cfg, meta = load_checkpoint_model(a.ckpt, None, a.ema)
    version = a.world or int(meta.get("world_version", 1))
    scenes = probe_scenes(a.scenes, version, a.frames)
    rows = measure(
        model.eval(),
        cfg,
        scenes,
        [float(x) for x in a.t.split(",")],
        bool(meta.get("oracle_captions")),
        mode=a.mode,
        per_scene=a.per_scene,
    )
    for r in rows:
        r.update({"source": a.model or a.ckpt, "ema": a.ema, "world": version, "mode": a.mode})
        line = json.dumps(r)
        print(line, flush=True)
        if a.out:
            os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
            with open(a.out, "a") as f:
                f.write(line + "\n")
    return rows


if __name__ == "__main__":
    main()
