"""Counterfactual-memory probe: does a later shot's x̂0 follow what shot 0 showed?

For a scene whose shot 0 and shot 1 share a location (wide) and a character, and one hidden
attribute A (ATTRIBUTES: scenery layout, a character's pattern, size, colour), let R be the true
render and R' the render with A altered (the same captions: the captions never say A, except
colour, where shot 0 then contradicts the caption). The model is run twice on the same input
except shot 0:

    shot 0     kept clean (t = 0): R_0 in the first run, R'_0 in the second
    shots >= 1 x_t = (1 - t) * (R + R') / 2 + t * eps, the same eps in both runs (so the noisy
               shots lean to neither version)

and reads x̂0 of shots >= 1 from each run (x̂0 = x_t - t * v, which is the network's own output
under x-prediction). The gain is how far the change of x̂0 follows the change of the truth:

    gain = <x̂0' - x̂0, R' - R> / <R' - R, R' - R>     over the pixels of shots >= 1 (model space)

1: the later shots change exactly as the truth does (they copy shot 0 fully); 0: they ignore
shot 0; a model that cannot see other shots ("shot" attention) scores 0 exactly. Per attribute,
the eval reports the mean gain over scenes with a bootstrap interval over scenes (stats.py).
Attributes are pluggable: ATTRIBUTES maps a name to a function (scene, rng) -> the altered scene
(only its renders are read) or None where the scene does not allow it; world v2 adds its own.

    python3 -m train.eval.memory --ckpt public/models/moc-base --scenes 8 --t 0.5 --modes dense,moc
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Callable, Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np
import torch

from ..data import EVAL_SEED_BASE, encode_scene, frames_to_model, scene_seed
from ..render import render_shot
from ..vocab import COLOURS, PATTERNS, Vocab
from ..world import Scene, sample_scene
from .generate import Loaded, load_model, pick_device
from .probes import redraw_location, with_character
from .stats import mean_ci

Attribute = Callable[[Scene, np.random.Generator], Optional[Scene]]
Predictor = Callable[[torch.Tensor, torch.Tensor, torch.Tensor, Tuple[int, ...]], torch.Tensor]
SIZE_CHANGE = 0.3  # a character's radius times 1 +- this
MEMORY_SEED_OFFSET = 0x3E3  # the probe's scenes: eval base + this, apart from the eval's own storyboards
MIN_CHANGE = 1e-6  # mean squared change of the later shots' truth below this: nothing to follow


def shared_character(scene: Scene) -> Optional[int]:
    """The lowest id of a character that acts in shot 0 and in shot 1 (None if there is none)."""
    both = {a.char for a in scene.shots[0].actors} & {a.char for a in scene.shots[1].actors}
    return min(both) if both else None


def alter_scenery(scene: Scene, rng: np.random.Generator) -> Optional[Scene]:
    """Shot 0's location with horizon and scenery re-drawn (shot 1 must be in the same place, wide)."""
    s0, s1 = scene.shots[0], scene.shots[1]
    if s1.location != s0.location or s1.framing != "wide":
        return None
    return redraw_location(scene, s0.location, rng)


def alter_pattern(scene: Scene, rng: np.random.Generator) -> Optional[Scene]:
    """The shared character's pattern -> solid (a solid one gets a random other pattern)."""
    cid = shared_character(scene)
    if cid is None:
        return None
    old = scene.character(cid).pattern
    new = "solid" if old != "solid" else str(rng.choice([p for p in PATTERNS if p != "solid"]))
    return with_character(scene, cid, pattern=new)


def alter_size(scene: Scene, rng: np.random.Generator) -> Optional[Scene]:
    """The shared character's radius times 1 +- SIZE_CHANGE (sign at random; feet stay on the ground)."""
    cid = shared_character(scene)
    if cid is None:
        return None
    sign = 1.0 if rng.random() < 0.5 else -1.0
    return with_character(scene, cid, size=scene.character(cid).size * (1.0 + sign * SIZE_CHANGE))


def alter_colour(scene: Scene, rng: np.random.Generator) -> Optional[Scene]:
    """The shared character recoloured with a colour the cast lacks (the captions keep the old one)."""
    cid = shared_character(scene)
    if cid is None:
        return None
    spare = [c for c in COLOURS if c not in {ch.colour for ch in scene.cast}]
    return with_character(scene, cid, colour=str(rng.choice(spare)))


ATTRIBUTES: Dict[str, Attribute] = {
    "scenery": alter_scenery,
    "pattern": alter_pattern,
    "size": alter_size,
    "colour": alter_colour,
}


def probe_scenes(n: int, seed: int = 0, shots: int = 2, frames: int = 8) -> List[Scene]:
    """The first n held-out scenes (eval seed base + MEMORY_SEED_OFFSET) whose shots 0 and 1
    share a location, are both wide, and share a character: every attribute applies to them."""
    out: List[Scene] = []
    base = EVAL_SEED_BASE + MEMORY_SEED_OFFSET + seed
    i = 0
    while len(out) < n:
        sc = sample_scene(scene_seed(base, i), shots=shots, frames=frames)
        i += 1
        s0, s1 = sc.shots[0], sc.shots[1]
        if s0.location == s1.location and s0.framing == s1.framing == "wide" and shared_character(sc):
            out.append(sc)
    return out


def model_predictor(
    lm: Loaded,
    mode: str,
    *,
    chunk_frames: Optional[int] = None,
    top_k: Optional[int] = None,
    causal: Optional[bool] = None,
) -> Predictor:
    """x̂0 = x_t - t * v of the model in one attention mode (no guidance: the caption-conditioned x̂0)."""
    info = lm.info
    kw = dict(
        mode=mode,
        chunk_frames=chunk_frames or info.get("chunk_frames") or lm.cfg.chunk_frames,
        top_k=top_k or info.get("top_k") or lm.cfg.top_k,
        causal=info.get("causal", lm.cfg.causal) if causal is None else causal,
    )

    @torch.no_grad()
    def predict(xt, t_shot, text, frames):
        v = lm.model(xt, t_shot, text, frames=frames, **kw).float()
        t_frame = torch.repeat_interleave(t_shot.float(), torch.tensor(frames, device=t_shot.device), dim=1)
        return xt - t_frame[:, :, None, None, None] * v

    return predict


def _render(scene: Scene, size: int) -> torch.Tensor:
    video = np.concatenate([render_shot(scene, i, size) for i in range(len(scene.shots))], 0)
    return frames_to_model(torch.from_numpy(video))  # [T, 3, H, W]


def cases(
    scenes: Sequence[Scene], attributes: Sequence[str], size: int, seed: int = 0
) -> Iterator[Tuple[int, str, torch.Tensor, torch.Tensor, Scene]]:
    """(scene index, attribute, truth [T, 3, H, W], altered [T, 3, H, W], scene) for every
    applicable pair whose alteration shows in shot 0 and in the later shots."""
    for i, sc in enumerate(scenes):
        for a, name in enumerate(attributes):
            rng = np.random.default_rng([seed, i, a, 0x3E3])
            alt = ATTRIBUTES[name](sc, rng)
            if alt is None:
                continue
            r, r2 = _render(sc, size), _render(alt, size)
            f0 = sc.shots[0].frames
            if torch.equal(r[:f0], r2[:f0]) or float((r2[f0:] - r[f0:]).pow(2).mean()) < MIN_CHANGE:
                continue
            yield i, name, r, r2, sc


@torch.no_grad()
def gains(
    predict: Predictor,
    scenes: Sequence[Scene],
    attributes: Sequence[str] = tuple(ATTRIBUTES),
    *,
    size: int,
    text_len: int,
    t: float = 0.5,
    seed: int = 0,
    batch: int = 4,
    device="cpu",
) -> List[dict]:
    """One record {"scene", "attribute", "gain", "change"} per case (module docstring)."""
    vocab = Vocab()
    todo = list(cases(scenes, attributes, size, seed))
    out: List[dict] = []
    for b0 in range(0, len(todo), batch):
        group = todo[b0 : b0 + batch]
        frames = tuple(sh.frames for sh in group[0][4].shots)
        f0, S, B = frames[0], len(frames), len(group)
        truth = torch.stack([g[2] for g in group]).to(device)  # [B, T, 3, H, W]
        alt = torch.stack([g[3] for g in group]).to(device)
        eps = torch.stack(
            [
                torch.randn(
                    g[2].shape,
                    generator=torch.Generator().manual_seed(
                        int(np.random.SeedSequence([seed, g[0], 0xE95]).generate_state(1)[0])
                    ),
                )
                for g in group
            ]
        ).to(device)
        mid = (1 - t) * 0.5 * (truth + alt) + t * eps
        x_a = torch.cat([truth[:, :f0], mid[:, f0:]], 1)
        x_b = torch.cat([alt[:, :f0], mid[:, f0:]], 1)
        text = torch.from_numpy(np.stack([encode_scene(g[4], vocab, text_len) for g in group])).to(device)
        t_shot = torch.full((B, S), t, device=device)
        t_shot[:, 0] = 0.0
        pred = predict(torch.cat([x_a, x_b]), torch.cat([t_shot, t_shot]), torch.cat([text, text]), frames)
        dx = (pred[B:, f0:] - pred[:B, f0:]).double().flatten(1)  # [B, n]
        dr = (alt[:, f0:] - truth[:, f0:]).double().flatten(1)
        g = (dx * dr).sum(1) / (dr * dr).sum(1)
        for (i, name, *_), gi, ch in zip(group, g.tolist(), dr.pow(2).mean(1).tolist()):
            out.append({"scene": i, "attribute": name, "gain": gi, "change": ch})
    return out


def summarise(records: Sequence[dict], attributes: Sequence[str], seed: int = 0) -> Dict[str, dict]:
    """Per attribute: the mean gain over scenes and its bootstrap interval ("score", "lo", "hi", "n")."""
    out = {}
    for a in attributes:
        rs = [r for r in records if r["attribute"] == a]
        if rs:
            out[a] = mean_ci([r["gain"] for r in rs], [r["scene"] for r in rs], seed=seed)
    return out


def memory_probe(
    lm,
    *,
    scenes: int = 8,
    t: float = 0.5,
    modes: Sequence[str] = ("dense", "moc"),
    attributes: Sequence[str] = tuple(ATTRIBUTES),
    seed: int = 0,
    shots: int = 2,
    frames: int = 8,
    batch: int = 4,
    device="cpu",
    chunk_frames: Optional[int] = None,
    top_k: Optional[int] = None,
    log=lambda *a: None,
) -> dict:
    """The probe for the trainer / the eval: {"t", "scenes", "modes": {mode: {attribute: summary}},
    "records": {mode: [...]}, "seconds"}. `lm` is a loaded model (generate.load_model) or a bare
    MoCDiT (the trainer's; its config's chunk size and top-k unless given)."""
    if not isinstance(lm, Loaded):
        lm = Loaded(lm, lm.cfg, {})
    unknown = [a for a in attributes if a not in ATTRIBUTES]
    if unknown:
        raise ValueError(f"memory probe: unknown attributes {unknown} (have {list(ATTRIBUTES)})")
    if shots < 2:
        raise ValueError("memory probe: needs at least 2 shots")
    t0 = time.perf_counter()
    sc = probe_scenes(scenes, seed, shots, frames)
    lm.model.to(device)
    res: dict = {"t": t, "scenes": scenes, "shots": shots, "frames": frames, "modes": {}, "records": {}}
    for m in modes:
        recs = gains(
            model_predictor(lm, m, chunk_frames=chunk_frames, top_k=top_k),
            sc,
            attributes,
            size=lm.cfg.image_size,
            text_len=lm.cfg.text_len,
            t=t,
            seed=seed,
            batch=batch,
            device=device,
        )
        res["records"][m] = recs
        res["modes"][m] = summarise(recs, attributes, seed)
        log(f"memory: {m} " + ", ".join(f"{a} {s['score']:.3f}" for a, s in res["modes"][m].items()))
    res["seconds"] = time.perf_counter() - t0
    return res


def markdown(res: dict) -> str:
    attrs = [a for a in ATTRIBUTES if any(a in s for s in res["modes"].values())]
    lines = [
        f"| memory gain, t = {res['t']} ({res['scenes']} scenes) | " + " | ".join(attrs) + " |",
        "|---|" + "---|" * len(attrs),
    ]
    for m, s in res["modes"].items():
        cells = [
            f"{s[a]['score']:.3f} [{s[a]['lo']:.3f}, {s[a]['hi']:.3f}] (n={s[a]['n']})" if a in s else "—"
            for a in attrs
        ]
        lines.append(f"| {m} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv: Optional[List[str]] = None) -> dict:
    p = argparse.ArgumentParser(prog="python3 -m train.eval.memory", description=__doc__.split("\n")[0])
    a = p.add_argument
    a("--ckpt", required=True, help="checkpoint dir / exported model folder / random:<config>")
    a("--ema", action="store_true")
    a("--scenes", type=int, default=8)
    a("--t", default="0.5", help="noise level(s) of the later shots, comma-separated")
    a("--modes", default="dense,moc")
    a("--attributes", default=",".join(ATTRIBUTES))
    a("--seed", type=int, default=0)
    a("--shots", type=int, default=2)
    a("--frames", type=int, default=8)
    a("--batch", type=int, default=4, help="cases per model call (each call runs 2x this)")
    a("--chunk-frames", type=int, default=None)
    a("--top-k", type=int, default=None)
    a("--device", default="cpu")
    a("--threads", type=int, default=0)
    a("--out", default=None, help="write the results (JSON) here")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    lm = load_model(args.ckpt, args.ema, args.seed)
    log = lambda msg: print(msg, file=sys.stderr, flush=True)
    runs = []
    for t in (float(x) for x in args.t.split(",")):
        r = memory_probe(
            lm,
            scenes=args.scenes,
            t=t,
            modes=[m for m in args.modes.split(",") if m],
            attributes=[x for x in args.attributes.split(",") if x],
            seed=args.seed,
            shots=args.shots,
            frames=args.frames,
            batch=args.batch,
            device=pick_device(args.device),
            chunk_frames=args.chunk_frames,
            top_k=args.top_k,
            log=log,
        )
        print(markdown(r) + f"\n{r['seconds']:.0f} s\n", flush=True)
        runs.append(r)
    result = {"model": lm.info, "argv": sys.argv[1:] if argv is None else list(argv), "runs": runs}
    if args.out:
        with open(args.out, "w") as f:
            json.dump(result, f, indent=1)
            f.write("\n")
    return result


if __name__ == "__main__":
    main()
