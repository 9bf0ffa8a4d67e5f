"""Checkpoints split into parts small enough to leave the GPU machine through $OUT.

<dir>/ckpt.json lists the parts (<dir>/ckpt.pt.000, .001, ...), their total size, sha256 and
the step. Saving writes new parts under temporary names, then renames, then writes the index
last, so an interrupted save leaves the previous checkpoint readable.
"""
from __future__ import annotations

import glob
import hashlib
import io
import json
import os
from typing import Any, Optional

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
    return torch.load(io.BytesIO(data), map_location=map_location)
