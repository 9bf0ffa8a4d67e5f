"""`python3 -m train.eval`: score a model on held-out storyboards in dense, moc and shot attention.

    python3 -m train.eval --ckpt PATH_OR_EXPORTED_MODEL_DIR [--ema] --storyboards 16 --seed 0 \\
        --modes dense,moc,shot --out DIR [--card docs/MODEL_CARD.md]
    python3 -m train.eval --ckpt random:tiny --storyboards 2 --steps 2 --out /tmp/eval   # smoke run

Sampler defaults are the studio's (STUDIO_STEPS, STUDIO_GUIDANCE = src/state/types.ts
DEFAULT_SETTINGS; a test fails when they drift apart), so the eval scores what users get.

Held-out scenes: scene i is world.sample_scene(data.scene_seed(EVAL_SEED_BASE + seed, i)). Training
draws scene seeds scene_seed(train_seed, index) with index < 1e9, so two bases never share a
scene; the eval refuses a model whose checkpoint says it trained with base EVAL_SEED_BASE + seed.

Each mode generates every storyboard twice with the same noise: "free" (every shot from noise:
adherence, motion, and the joint consistency tests) and "cond" (shot 0 kept as ground truth:
consistency, see probes.py). The same tests score the references and baselines, which need no
model (the same video in free and cond):
    ground truth           the exact renders (the ceiling: every score 1)
    truth, no memory       shot 0 true, each later shot rendered with the hidden attributes re-drawn:
                           perfect shots without memory (consistency ~0.5, the rest ~1)
    truth, solid           shot 0 true, later shots with every character solid at its true size
                           (calibration: size tests ~1, pattern test low)
    truth, sizes re-drawn  shot 0 true, later shots with true patterns at random sizes
                           (calibration: size and area tests ~0.5, pattern test high)
    noise                  uniform random pixels (adherence, consistency, motion ~0.5)
    mean colour            every frame the mean colour of all ground-truth videos (~0.5)
Intervals: 95 % cluster bootstrap over storyboards (report.py, stats.py).
Writes DIR/results.json (settings, every row's scores and generation cost, every test's score),
DIR/results.md (the table and the sub-scores) and DIR/sheet-<i>.png for the first --sheets scenes
(blocks top to bottom: ground truth, then each mode free, then each mode cond; a row per shot).
"""
from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from typing import Dict, List, Optional

import numpy as np
import torch

from .. import checkpoint
from ..data import EVAL_SEED_BASE, scene_seed
from ..world import sample_scene, storyboard
from . import report
from .generate import Loaded, generate, load_model, pick_device
from .memory import markdown as memory_markdown, memory_probe
from .retrieval import markdown as retrieval_markdown, retrieval_probe
from .probes import DOCTORED, Probe, build_probe, score_videos

MODES = ("dense", "moc", "shot")
BASELINES = ("ground truth",) + tuple(DOCTORED) + ("noise", "mean colour")
STUDIO_STEPS = 16  # src/state/types.ts DEFAULT_SETTINGS.steps (test_eval checks they agree)
STUDIO_GUIDANCE = 3.0  # ... .guidance


def held_out_scenes(n: int, seed: int, shots: int, frames: int):
    base = EVAL_SEED_BASE + seed
    return [sample_scene(scene_seed(base, i), shots=shots, frames=frames) for i in range(n)]


def _probe_job(args):
    scene, size, seed, alternatives = args
    return build_probe(scene, size, seed, alternatives)


def build_probes(scenes, size: int, seed: int, alternatives: int, workers: int):
    """Probes of all scenes (in worker processes when workers > 1); returns a callable giving them."""
    jobs = [
        (sc, size, int(np.random.SeedSequence([seed, i, 7]).generate_state(1)[0]), alternatives)
        for i, sc in enumerate(scenes)
    ]
    if workers <= 1:
        probes = [_probe_job(j) for j in jobs]
        return lambda: probes
    # spawn, not fork: a child forked from a process whose torch / BLAS thread pools are running
    # can deadlock before it does any work (seen on the 2-core CI machine)
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"))
    futures = [pool.submit(_probe_job, j) for j in jobs]

    def collect() -> List[Probe]:
        out = [f.result() for f in futures]
        pool.shutdown()
        return out

    return collect


def baselines(probes: List[Probe], seed: int) -> Dict[str, List[np.ndarray]]:
    """The model-free videos of BASELINES for every probe (free run)."""
    truth = [p.video() for p in probes]
    mean = np.mean([t.reshape(-1, 3).mean(0) for t in truth], 0).round().astype(np.uint8)
    noise = [
        np.random.default_rng([seed, i, 11]).integers(0, 256, t.shape, dtype=np.uint8) for i, t in enumerate(truth)
    ]
    return {
        "ground truth": truth,
        **{k: [p.doctored[k] for p in probes] for k in DOCTORED},
        "noise": noise,
        "mean colour": [np.broadcast_to(mean, t.shape).copy() for t in truth],
    }


def with_first_shot(video: np.ndarray, truth: np.ndarray, frames0: int) -> np.ndarray:
    v = video.copy()
    v[:frames0] = truth[:frames0]
    return v


def evaluate(
    lm: Loaded,
    *,
    storyboards: int,
    seed: int,
    steps: int = STUDIO_STEPS,
    modes=MODES,
    guidance: float = STUDIO_GUIDANCE,
    batch: int = 16,
    device="cpu",
    amp: bool = False,
    shots: int = 4,
    frames: int = 8,
    chunk_frames: Optional[int] = None,
    top_k: Optional[int] = None,
    causal: Optional[bool] = None,
    alternatives: int = 4,
    workers: int = 1,
    memory_scenes: int = 0,
    memory_t: float = 0.5,
    log=lambda *a: None,
) -> dict:
    """Generate, score and summarise (see the module docstring). Returns the results.json dict."""
    t_start = time.perf_counter()
    device = torch.device(device)
    if lm.info.get("train_seed") is not None and int(lm.info["train_seed"]) == EVAL_SEED_BASE + seed:
        raise ValueError(
            f"the model trained on scene seed base {lm.info['train_seed']}, the eval's own "
            f"(EVAL_SEED_BASE + --seed): pick another --seed"
        )
    bad = [m for m in modes if m not in MODES]
    if bad:
        raise ValueError(f"--modes: unknown {bad} (have {list(MODES)})")
    chunk_frames = lm.info["chunk_frames"] if chunk_frames is None else chunk_frames
    top_k = lm.info["top_k"] if top_k is None else top_k
    causal = lm.info["causal"] if causal is None else causal
    scenes = held_out_scenes(storyboards, seed, shots, frames)
    collect = build_probes(scenes, lm.cfg.image_size, seed, alternatives, workers)
    lm.model.to(device)
    gen_kw = dict(
        steps=steps,
        guidance=guidance,
        seed=seed,
        batch=batch,
        device=device,
        amp=amp,
        chunk_frames=chunk_frames,
        top_k=top_k,
        causal=causal,
        warmup=device.type == "cuda",
    )
    free: Dict[str, List[np.ndarray]] = {}
    costs: Dict[str, dict] = {}
    for m in modes:
        free[m], costs[m] = generate(lm, scenes, m, **gen_kw)
        log(f"eval: {m} free: {costs[m]['seconds']:.1f}s, sparsity {costs[m]['sparsity']:.3f}")
    t_probe = time.perf_counter()
    probes = collect()
    t_probe = time.perf_counter() - t_probe
    truth = [p.video() for p in probes]
    cond: Dict[str, List[np.ndarray]] = {}
    for m in modes:
        cond[m], c = generate(lm, scenes, m, keep_first=truth, **gen_kw)
        costs[m]["seconds_cond"] = c["seconds"]
        log(f"eval: {m} cond: {c['seconds']:.1f}s")
    base = baselines(probes, seed)
    f0 = scenes[0].shots[0].frames
    free.update(base)
    cond.update({k: [with_first_shot(v, t, f0) for v, t in zip(vs, truth)] for k, vs in base.items()})
    t_score = time.perf_counter()
    tests: Dict[str, List[dict]] = {k: [] for k in free}
    for i, p in enumerate(probes):
        scored = score_videos(
            p, {"free": {k: v[i] for k, v in free.items()}, "cond": {k: v[i] for k, v in cond.items()}}, device
        )
        for k, recs in scored.items():
            tests[k] += [{"scene": i, **r} for r in recs]
    t_score = time.perf_counter() - t_score
    retrieval = None
    if "moc" in modes:
        retrieval = retrieval_probe(
            lm, scenes, device=device, chunk_frames=chunk_frames, top_k=top_k, causal=causal, seed=seed, batch=batch
        )
        log(f"eval: retrieval score {retrieval['score']:.3f} over {retrieval['n']} cases")
    mem = None
    mem_modes = [m for m in modes if m in ("dense", "moc")]
    if memory_scenes and mem_modes:
        mem = memory_probe(
            lm,
            scenes=memory_scenes,
            t=memory_t,
            modes=mem_modes,
            seed=seed,
            frames=frames,
            device=device,
            chunk_frames=chunk_frames,
            top_k=top_k,
            log=log,
        )
        mem.pop("records")
    rows = {}
    for k in free:
        rows[k] = report.summarise(tests[k], seed)
        if k in costs:
            rows[k]["generation"] = costs[k]
    return {
        "version": 1,
        "model": lm.info,
        "settings": {
            "storyboards": storyboards,
            "seed": seed,
            "scene_seed_base": EVAL_SEED_BASE + seed,
            "steps": steps,
            "guidance": guidance,
            "modes": list(modes),
            "batch": batch,
            "shots": shots,
            "frames": frames,
            "image_size": lm.cfg.image_size,
            "chunk_frames": chunk_frames,
            "top_k": top_k,
            "causal": causal,
            "alternatives": alternatives,
            "device": str(device),
            "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
            "amp": "bf16" if amp and device.type == "cuda" else "none",
            "torch": torch.__version__,
        },
        "timing": {"total": time.perf_counter() - t_start, "probes_wait": t_probe, "scoring": t_score},
        "scenes": [{"index": i, "seed": sc.seed, "storyboard": storyboard(sc)} for i, sc in enumerate(scenes)],
        "rows": rows,
        "retrieval": retrieval,
        "memory": mem,
        "tests": tests,
        "_videos": {"free": free, "cond": cond},
    }


def write_outputs(res: dict, out: str, sheets: int = 2) -> str:
    """results.json, results.md and contact sheets; returns the markdown table."""
    os.makedirs(out, exist_ok=True)
    videos = res.pop("_videos", None)
    table = report.markdown_table(res["rows"], res["settings"]["storyboards"])
    with open(os.path.join(out, "results.json"), "w") as f:
        json.dump(res, f, indent=1)
        f.write("\n")
    s = res["settings"]
    with open(os.path.join(out, "results.md"), "w") as f:
        f.write(
            f"# Evaluation of {res['model'].get('path')}\n\n"
            f"{s['storyboards']} held-out storyboards (scene seed base {s['scene_seed_base']}), "
            f"{s['shots']} shots x {s['frames']} frames at {s['image_size']}px, {s['steps']} Euler steps, "
            f"guidance {s['guidance']}, moc chunk {s['chunk_frames']} frame(s) top-{s['top_k']}"
            f"{' causal' if s['causal'] else ''}; {s['device_name']}, amp {s['amp']}, torch {s['torch']}.\n"
            "Scores: 1 = matches the ground truth, 0.5 = chance (train/eval/probes.py); "
            "[95 % cluster-bootstrap interval over storyboards].\n\n"
            + table
            + "\n## Sub-scores\n\n"
            + report.detail_table(res["rows"])
            + (
                "\n## Retrieval (train/eval/retrieval.py)\n\n" + retrieval_markdown(res["retrieval"])
                if res.get("retrieval")
                else ""
            )
            + (
                "\n## Counterfactual memory (train/eval/memory.py)\n\n" + memory_markdown(res["memory"])
                if res.get("memory")
                else ""
            )
        )
    if videos is not None:
        frames = [sh["frames"] for sh in res["scenes"][0]["storyboard"]["shots"]]
        for i in range(min(sheets, len(res["scenes"]))):
            order = (
                [videos["free"]["ground truth"][i]]
                + [videos["free"][m][i] for m in s["modes"]]
                + [videos["cond"][m][i] for m in s["modes"]]
            )
            report.write_sheet(os.path.join(out, f"sheet-{i}.png"), order, frames)
    return table


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python3 -m train.eval", description=__doc__.split("\n")[0])
    a = p.add_argument
    a(
        "--ckpt",
        required=True,
        help="checkpoint dir / ckpt.json / torch file, exported model folder, or random:<config>",
    )
    a("--ema", action="store_true", help="evaluate the checkpoint's EMA weights")
    a("--storyboards", type=int, default=16)
    a("--seed", type=int, default=0)
    a("--steps", type=int, default=STUDIO_STEPS, help="Euler steps (default: the studio's)")
    a("--guidance", type=float, default=STUDIO_GUIDANCE, help="classifier-free guidance (default: the studio's)")
    a("--modes", default="dense,moc,shot")
    a("--out", required=True)
    a("--batch", type=int, default=16, help="storyboards per sampler call")
    a("--shots", type=int, default=None, help="default: the training run's, else 4")
    a("--frames", type=int, default=None, help="frames per shot; default: the training run's, else 8")
    a("--chunk-frames", type=int, default=None, help="moc chunk size; default: the training schedule's last stage")
    a("--top-k", type=int, default=None, help="moc routed chunks; default: the training schedule's last stage")
    a("--alternatives", type=int, default=4, help="random re-draws per consistency test")
    a("--device", default="auto")
    a("--amp", default="auto", choices=["auto", "bf16", "none"])
    a("--workers", type=int, default=0, help="processes rendering the probes (0: up to 8, by CPU count)")
    a("--threads", type=int, default=0, help="torch CPU threads (0: leave as is)")
    a("--sheets", type=int, default=2, help="contact sheets of the first N storyboards")
    a("--memory-scenes", type=int, default=8, help="scenes of the counterfactual-memory probe (memory.py; 0: skip)")
    a("--memory-t", type=float, default=0.5, help="noise level of the memory probe's later shots")
    a("--card", default=None, help="also put the table into this model card (docs/MODEL_CARD.md)")
    return p


def main(argv: Optional[List[str]] = None) -> dict:
    args = build_parser().parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = pick_device(args.device)
    workers = args.workers or min(8, os.cpu_count() or 1)
    try:
        lm = load_model(args.ckpt, args.ema, args.seed)
    except checkpoint.UnsafeCheckpoint as e:
        raise SystemExit(f"eval: {e}") from None
    log = lambda msg: print(msg, file=sys.stderr, flush=True)
    res = evaluate(
        lm,
        storyboards=args.storyboards,
        seed=args.seed,
        steps=args.steps,
        modes=[m.strip() for m in args.modes.split(",") if m.strip()],
        guidance=args.guidance,
        batch=args.batch,
        device=device,
        amp=args.amp == "bf16" or (args.amp == "auto" and device.type == "cuda"),
        shots=args.shots or lm.info.get("shots") or 4,
        frames=args.frames or lm.info.get("frames") or 8,
        chunk_frames=args.chunk_frames,
        top_k=args.top_k,
        alternatives=args.alternatives,
        workers=workers,
        memory_scenes=args.memory_scenes,
        memory_t=args.memory_t,
        log=log,
    )
    res["argv"] = sys.argv[1:] if argv is None else list(argv)
    table = write_outputs(res, args.out, args.sheets)
    if args.card:
        s = res["settings"]
        note = (
            f"Model `{res['model'].get('path')}` (step {res['model'].get('step')}); "
            f"`python3 -m train.eval {' '.join(res['argv'])}` on {s['device_name']}, amp {s['amp']}."
        )
        mem = ("\n" + memory_markdown(res["memory"])) if res.get("memory") else ""
        report.insert_into_card(args.card, table + mem, note)
    print(table, end="")
    return res
