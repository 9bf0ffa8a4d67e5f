"""Euler sampler for the rectified-flow MoC DiT, with classifier-free guidance and per-shot
timesteps (shots given in `keep` stay clean at t = 0 and act as conditions; the others are
integrated from noise at t = 1 down to t = 0).

    v = v_null + guidance * (v_text - v_null),   x <- x - (t_now - t_next) * v
The null condition is every caption all `<pad>` (what caption dropout trains).

    /usr/bin/python3 -m train.sample --ckpt train/runs/tiny --storyboard public/storyboards/two-friends.json --out a.png
    /usr/bin/python3 -m train.sample --model public/models/moc-base --scene 3 --out b.png
writes a contact sheet, a row per shot (with --scene: the world's truth above each generated row).
"""
from __future__ import annotations

from typing import Optional, Sequence

import torch


@torch.no_grad()
def sample(
    model,
    text: torch.Tensor,
    frames: Sequence[int],
    steps: int = 20,
    guidance: float = 3.0,
    mode: str = "moc",
    chunk_frames: Optional[int] = None,
    top_k: Optional[int] = None,
    causal: Optional[bool] = None,
    seeds: Optional[Sequence[int]] = None,
    keep: Optional[torch.Tensor] = None,
    keep_shots: Optional[Sequence[bool]] = None,
    stats: Optional[list] = None,
    backend: str = "auto",
) -> torch.Tensor:
    """Frames [B, T, 3, H, W] in [-1, 1] for captions text [B, S+1, L].

    seeds: one noise seed per shot (the storyboard's), drawn on the CPU generator.
    keep / keep_shots: clean frames [B, T, 3, H, W] and which shots to hold fixed.
    stats: a list that receives the sparsity of every layer of every model call.
    """
    cfg = model.cfg
    device = text.device
    B, S = text.shape[0], len(frames)
    T = sum(frames)
    size = cfg.image_size
    seeds = list(seeds) if seeds is not None else list(range(S))
    noise = []
    for s, f in enumerate(frames):
        g = torch.Generator().manual_seed(int(seeds[s]))
        noise.append(torch.randn(B, f, cfg.channels, size, size, generator=g))
    x = torch.cat(noise, 1).to(device)  # [B, T, 3, H, W]
    fixed = torch.zeros(S, dtype=torch.bool, device=device)
    if keep_shots is not None:
        fixed = torch.as_tensor(list(keep_shots), dtype=torch.bool, device=device)
    frame_shot = torch.repeat_interleave(torch.arange(S, device=device), torch.tensor(list(frames), device=device))
    fixed_frames = fixed[frame_shot][None, :, None, None, None]  # [1, T, 1, 1, 1]
    if keep is not None:
        x = torch.where(fixed_frames, keep.to(device), x)
    null = torch.zeros_like(text)
    kw = dict(
        frames=frames, mode=mode, chunk_frames=chunk_frames, top_k=top_k, causal=causal, backend=backend, stats=stats
    )
    ts = torch.linspace(1.0, 0.0, steps + 1).tolist()
    for t_now, t_next in zip(ts[:-1], ts[1:]):
        t_shot = torch.where(fixed, torch.zeros(S, device=device), torch.full((S,), t_now, device=device))
        t_shot = t_shot[None].expand(B, S)  # [B, S]
        v = model(x, t_shot, text, **kw)
        if guidance != 1.0:
            v_null = model(x, t_shot, null, **kw)
            v = v_null + guidance * (v - v_null)
        x = torch.where(fixed_frames, x, x - (t_now - t_next) * v)
    return x


# ---- command line: a contact sheet of a storyboard (or a world scene next to its truth) -------
def load_model(ckpt_dir: str, ema: bool = True):
    """MoCDiT from a trainer checkpoint directory (EMA weights by default), in eval mode."""
    from . import checkpoint
    from .model import MoCDiT, ModelConfig

    state = checkpoint.load(ckpt_dir)
    if state is None:
        raise FileNotFoundError(f"{ckpt_dir}: no checkpoint (ckpt.json)")
    model = MoCDiT(ModelConfig(**state["config"]))
    model.load_state_dict(state["model"])
    if ema:
        with torch.no_grad():
            for p, e in zip(model.parameters(), state["ema"]):
                p.copy_(e)
    return model.eval(), int(state["step"])


def encode_board(board: dict, text_len: int, oracle: bool = False) -> torch.Tensor:
    """Storyboard -> caption ids [1, S+1, L]; unknown words are an error naming them.
    oracle: the --oracle-captions vocabulary (vocab.build_words(oracle=True))."""
    from .vocab import Vocab

    vocab = Vocab(oracle=oracle)
    rows = []
    for cap in [board["globalCaption"]] + [s["caption"] for s in board["shots"]]:
        enc = vocab.encode(cap, text_len)
        if enc.unknown:
            raise ValueError(f"unknown words {enc.unknown} in {cap!r}")
        rows.append(enc.ids)
    return torch.tensor([rows], dtype=torch.long)


def main(argv=None) -> str:
    import argparse
    import json
    import os

    import numpy as np

    from .data import EVAL_SEED_BASE, model_to_frames
    from .render import contact_sheet, render_scene, write_png
    from .world import global_caption, sample_scene, storyboard

    p = argparse.ArgumentParser(
        prog="python3 -m train.sample",
        description="Sample a storyboard with a checkpoint; write a PNG contact sheet (a row per shot).",
    )
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--ckpt", help="trainer checkpoint directory")
    which.add_argument("--model", help="exported model folder (public/models/NAME)")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--storyboard", help="storyboard JSON file")
    src.add_argument("--scene", type=int, help="a held-out world scene (index); its truth is drawn above each row")
    p.add_argument("--shots", type=int, default=4)
    p.add_argument("--frames", type=int, default=8)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--guidance", type=float, default=3.0)
    p.add_argument("--mode", default="moc", choices=["moc", "dense", "shot"])
    p.add_argument("--chunk-frames", type=int)
    p.add_argument("--top-k", type=int)
    p.add_argument("--no-ema", action="store_true")
    p.add_argument("--scale", type=int, default=3)
    p.add_argument("--world", type=int, default=None, help="--scene's world version (default: the model's, else 1)")
    p.add_argument("--out", required=True, help="PNG path")
    a = p.parse_args(argv)
    if a.model:
        from .export import load_exported

        model, _, meta = load_exported(a.model)
        model, step = model.eval(), int(meta.get("step", 0))
    else:
        model, step = load_model(a.ckpt, ema=not a.no_ema)
        meta = {}
        if a.ckpt:
            from .export import trained_shape
            from . import checkpoint

            meta = trained_shape((checkpoint.load(a.ckpt) or {}).get("args") or {})
    oracle = bool(meta.get("oracle_captions"))
    truth = None
    if a.storyboard:
        with open(a.storyboard) as f:
            board = json.load(f)
    else:
        scene = sample_scene(
            EVAL_SEED_BASE + a.scene,
            shots=a.shots,
            frames=a.frames,
            version=a.world or int(meta.get("world_version", 1)),
        )
        board, truth = storyboard(scene), render_scene(scene, model.cfg.image_size)
        if oracle:
            board["globalCaption"] = global_caption(scene, oracle=True)
    frames = [s["frames"] for s in board["shots"]]
    text = encode_board(board, model.cfg.text_len, oracle)
    x = sample(
        model,
        text,
        frames,
        steps=a.steps,
        guidance=a.guidance,
        mode=a.mode,
        chunk_frames=a.chunk_frames,
        top_k=a.top_k,
        seeds=[s["seed"] for s in board["shots"]],
    )
    video = model_to_frames(x)[0].numpy()  # [T, H, W, 3]
    bounds = np.cumsum([0] + frames)
    shots = [video[b0:b1] for b0, b1 in zip(bounds[:-1], bounds[1:])]
    rows = [r for pair in zip(truth, shots) for r in pair] if truth is not None else shots
    sheet = contact_sheet(rows)
    sheet = np.repeat(np.repeat(sheet, a.scale, 0), a.scale, 1)
    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    write_png(a.out, sheet)
    print(f"sample: step {step}, {a.mode}, {len(frames)} shots -> {a.out}")
    return a.out


if __name__ == "__main__":
    main()
