"""Checkpoints split into parts small enough to leave the GPU machine through $OUT.

<dir>/ckpt.json lists the parts (<dir>/ckpt.pt.000, .001, ...), their total size, sha256 and
the step. Saving writes new parts under temporary names, then renames, then writes the index
last, so an interrupted save leaves the previous checkpoint readable.

State keys: step, model (state_dict, f32), ema (list of f32 tensors in model.parameters()
order), opt (optimiser state_dict or None), config, args. A *compact* state (`compact`) keeps
the f32 weights but stores the EMA as bf16 differences from them (`ema_delta`, `ema_names`) and
no optimiser: ~0.375 of a full checkpoint, for carrying a run between machines. `load` turns
it back into the usual keys (the EMA then differs from the original by < 2^-8 of ema - weights).
"""
from __future__ import annotations

import glob
import hashlib
import io
import json
import os
from typing import Any, List, Optional

import torch

INDEX = "ckpt.json"


def save(out_dir: str, state: dict, part_mb: float = 15.0) -> str:
    os.makedirs(out_dir, exist_ok=True)
    buf = io.BytesIO()
    torch.save(state, buf)
    data = buf.getvalue()
    size = max(1, int(part_mb * 1024 * 1024))
    names = []
    for i in range(0, max(1, len(data)), size):
        name = f"ckpt.pt.{len(names):03d}"
        tmp = os.path.join(out_dir, name + ".tmp")
        with open(tmp, "wb") as f:
            f.write(data[i:i + size])
        names.append(name)
    for name in names:
        os.replace(os.path.join(out_dir, name + ".tmp"), os.path.join(out_dir, name))
    index = {"version": 1, "step": int(state.get("step", 0)), "parts": names, "bytes": len(data),
             "sha256": hashlib.sha256(data).hexdigest()}
    tmp = os.path.join(out_dir, INDEX + ".tmp")
    with open(tmp, "w") as f:
        json.dump(index, f, indent=1)
    os.replace(tmp, os.path.join(out_dir, INDEX))
    for stale in glob.glob(os.path.join(out_dir, "ckpt.pt.[0-9][0-9][0-9]")):
        if os.path.basename(stale) not in names:
            os.remove(stale)
    return os.path.join(out_dir, INDEX)


def compact(state: dict, param_names: List[str]) -> dict:
    """A full state -> the compact one (see the module docstring)."""
    model = state["model"]
    deltas = [(e.float().cpu() - model[n].float().cpu()).to(torch.bfloat16)
              for n, e in zip(param_names, state["ema"])]
    rest = {k: v for k, v in state.items() if k not in ("ema", "opt")}
    return {**rest, "opt": None, "ema_names": list(param_names), "ema_delta": deltas}


def load(out_dir: str, map_location: Any = "cpu") -> Optional[dict]:
    """The checkpoint in out_dir, or None if there is none. Raises if a part is corrupt."""
    path = os.path.join(out_dir, INDEX)
    if not os.path.exists(path):
        return None
    with open(path) as f:
        index = json.load(f)
    data = b"".join(open(os.path.join(out_dir, n), "rb").read() for n in index["parts"])
    if len(data) != index["bytes"] or hashlib.sha256(data).hexdigest() != index["sha256"]:
        raise RuntimeError(f"checkpoint in {out_dir} is corrupt (size or sha256 mismatch)")
    state = torch.load(io.BytesIO(data), map_location=map_location)
    if "ema_delta" in state:
        model = state["model"]
        state["ema"] = [model[n].float() + d.float() for n, d in zip(state.pop("ema_names"), state.pop("ema_delta"))]
    return state
