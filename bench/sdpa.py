"""Dense attention anchor for the benchmarks: PyTorch scaled_dot_product_attention on the GPU.

Usage (GPU machine): python3 bench/sdpa.py --n 16384 65536 --heads 4 --dim 64 [--json OUT]
Prints one markdown row per (N, dtype): median ms over repeats, TFLOP/s with FLOPs = 4·N²·D·H.
A size that does not fit in memory is reported as 'oom', not skipped silently.
"""
import argparse
import json
import statistics

import torch
import torch.nn.functional as F


def time_sdpa(n: int, h: int, d: int, dtype: torch.dtype, reps: int) -> float:
    q, k, v = (torch.randn(1, h, n, d, device="cuda", dtype=dtype) for _ in range(3))
    for _ in range(2):
        F.scaled_dot_product_attention(q, k, v)
    torch.cuda.synchronize()
    times = []
    for _ in range(reps):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        F.scaled_dot_product_attention(q, k, v)
        end.record()
        torch.cuda.synchronize()
        times.append(start.elapsed_time(end))
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, nargs="+", default=[16384])
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--dim", type=int, default=64)
    ap.add_argument("--reps", type=int, default=10)
    ap.add_argument("--json")
    args = ap.parse_args()
    torch.backends.cuda.matmul.allow_tf32 = False
    rows = []
    print(f"device: {torch.cuda.get_device_name()} torch {torch.__version__}")
    print("| N | dtype | ms (median) | TFLOP/s |\n|---|---|---|---|")
    for n in args.n:
        for name, dtype in (("f32", torch.float32), ("bf16", torch.bfloat16)):
            try:
                ms = time_sdpa(n, args.heads, args.dim, dtype, args.reps)
            except torch.cuda.OutOfMemoryError:
                torch.cuda.empty_cache()
                rows.append({"n": n, "dtype": name, "ms": None})
                print(f"| {n} | {name} | oom | - |")
                continue
            tflops = 4 * n * n * args.dim * args.heads / (ms * 1e-3) / 1e12
            rows.append({"n": n, "dtype": name, "ms": ms, "tflops": tflops})
            print(f"| {n} | {name} | {ms:.3f} | {tflops:.1f} |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"device": torch.cuda.get_device_name(), "torch": torch.__version__, "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()
