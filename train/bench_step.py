"""Seconds per full training step (forward, backward, optimiser) of a dense and a MoC stage, on one
fixed batch of the world, so trainer changes can be timed without a training run.

    python3 -m train.bench_step [--config base] [--batch-size 32] [--compile] [--backend flex] [--profile]
    python3 -m train.bench_step --device cpu --config tiny --batch-size 1 --amp none     # smoke

Takes the trainer's flags (train.train's parser) for what a step does (with --shot-lengths, the batch
has the first tuple of mixed lengths, e.g. 4+4+12+12); runs 4 warm-up steps (compiling
happens there) and prints the mean of 12 for each stage, and with --profile a table of the 22 most
expensive GPU kernels over 3 more steps. Results on the H200: docs/bench/h200-train-step-and-sampler.txt.
"""
from __future__ import annotations

import sys
import time
from typing import List, Optional

import torch

from .data import ShotLengths, WorldDataset, batch as make_batch, frames_to_model, parse_shot_lengths
from .model import MoCDiT, compile_blocks, make_config
from .train import _sync, build_parser, setup_run, train_step

STAGES = [("dense", 0, 0, None), ("moc", 1, 4, None)]


def main(argv: Optional[List[str]] = None) -> dict:
    argv = list(sys.argv[1:] if argv is None else argv)
    profile = "--profile" in argv
    argv = [a for a in argv if a != "--profile"]
    args = build_parser().parse_args(["--config", "base", "--batch-size", "32", "--q-tile", "4096"] + argv)
    _, _, device = setup_run(args)
    cfg = make_config(args.config)
    torch.manual_seed(args.seed)
    model = MoCDiT(cfg).to(device)
    if args.compile:
        compile_blocks(model)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-5)
    lengths = ShotLengths(args.shots, args.frames, parse_shot_lengths(args.shot_lengths), args.seed)
    frames = next((t for t in lengths.tuples if len(set(t)) > 1), lengths.tuples[0])  # mixed if any
    lengths.tuples = [frames]  # every item of the batch
    data = WorldDataset(args.seed, args.shots, args.frames, cfg.image_size, cfg.text_len, masks=True, lengths=lengths)
    video, text, fg = make_batch(data, range(args.batch_size))
    x0, text, fg = frames_to_model(video.to(device)), text.to(device), fg.to(device)
    tag = f"{args.config} batch {args.batch_size}, frames {'+'.join(map(str, frames))}, compile={args.compile}, backend={args.backend}"
    result = {}
    for stage in STAGES:
        gen = torch.Generator(device=device)

        def step(i: int) -> None:
            gen.manual_seed(i)
            train_step(model, model, opt, x0, text, frames, stage, args, gen, fg=fg, fg_weight=1.0)

        t0 = time.time()
        for i in range(4):
            step(i)
        _sync(device)
        warm, t0 = time.time() - t0, time.time()
        for i in range(12):
            step(i)
        _sync(device)
        ms = (time.time() - t0) / 12 * 1000
        result[stage[0]] = ms
        print(f"[{tag}] {stage[0]}: warm-up 4 steps {warm:.1f} s, then {ms:.1f} ms/step", flush=True)
        if profile and device.type == "cuda":
            from torch.profiler import ProfilerActivity, profile as prof

            with prof(activities=[ProfilerActivity.CUDA]) as p:
                for i in range(3):
                    step(i)
                _sync(device)
            print(p.key_averages().table(sort_by="cuda_time_total", row_limit=22, max_name_column_width=60), flush=True)
    return result


if __name__ == "__main__":
    main()
