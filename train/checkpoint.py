"""Checkpoints split into parts small enough to leave the GPU machine through $OUT.

<dir>/ckpt.json lists the parts (<dir>/ckpt.pt.000, .001, ...), their total size, sha256 and
the step. Saving writes new parts under temporary names, then renames, then writes the index
last, so an interrupted save leaves the previous checkpoint readable.

State keys: step, model (state_dict, f32), ema (list of f32 tensors in model.parameters()
order), opt (optimiser state_dict or None), config, args. A *compact* state (`compact`) keeps
the f32 weights but stores the EMA as bf16 differences from them (`ema_delta`, `ema_names`) and
no optimiser: ~0.375 of a full checkpoint, for carrying a run between machines. `load` turns
it back into the usual keys (the EMA then differs from the original by < 2^-8 of ema - weights).

Every torch file is read with `load_torch`: its pickle is read opcode by opcode first, and one
that names anything but tensors, their storages and OrderedDict (os.system, builtins.eval, any
class) is refused with `UnsafeCheckpoint` before anything is unpickled. Plain data (numbers,
strings, lists, dicts, tuples, None) needs no names, so every checkpoint this trainer wrote
loads as before. Why not `weights_only=True`: torch 1.13's safe unpickler cannot read plain
floats (the optimiser state and args hold them), and Debian's 1.13 ignores a `pickle_module`
unless weights_only is set; the opcode check works the same on 1.13 and 2.x.
"""
from __future__ import annotations

import glob
import hashlib
import io
import json
import os
import pickletools
import zipfile
from typing import Any, List, Optional

import torch

INDEX = "ckpt.json"

# The globals a checkpoint's pickle may name: what torch.save writes for tensors and state_dicts.
_STORAGES = (
    "Float",
    "Double",
    "Half",
    "BFloat16",
    "Long",
    "Int",
    "Short",
    "Char",
    "Byte",
    "Bool",
    "ComplexFloat",
    "ComplexDouble",
)
_ALLOWED = {
    ("torch._utils", "_rebuild_tensor_v2"),
    ("torch._utils", "_rebuild_parameter"),
    ("collections", "OrderedDict"),
} | {("torch", f"{t}Storage") for t in _STORAGES}
# Opcodes that reach a callable other than through a checked GLOBAL; torch.save (protocol 2)
# never writes them.
_REFUSED_OPS = {"STACK_GLOBAL", "EXT1", "EXT2", "EXT4"}


class UnsafeCheckpoint(ValueError):
    """A torch file whose pickle names something other than tensors and plain data."""


def _printable(text: str, limit: int = 80) -> str:
    return text[:limit].encode("unicode_escape").decode("ascii")


def check_pickle(pkl: bytes, label: str) -> None:
    """Raise UnsafeCheckpoint unless every global the pickle names is in _ALLOWED. Nothing is
    unpickled: the opcodes are only read (pickletools), so a planted call never runs."""
    try:
        for op, arg, _ in pickletools.genops(pkl):
            if op.name in _REFUSED_OPS:
                raise UnsafeCheckpoint(
                    f"{label}: refusing to load: its pickle uses {op.name}, which torch.save never writes"
                )
            if op.name in ("GLOBAL", "INST"):
                module, _, name = str(arg).partition(" ")
                if (module, name) not in _ALLOWED:
                    raise UnsafeCheckpoint(
                        f"{label}: refusing to load: its pickle asks for {_printable(module)}."
                        f"{_printable(name)}; a checkpoint may hold only tensors and plain "
                        "data (numbers, strings, lists, dicts)"
                    )
    except UnsafeCheckpoint:
        raise
    except Exception as e:  # malformed opcodes
        raise UnsafeCheckpoint(f"{label}: refusing to load: its pickle is malformed ({_printable(str(e))})") from None


def load_torch(src: Any, map_location: Any = "cpu", name: Optional[str] = None) -> Any:
    """torch.load of a path, bytes or file object, after check_pickle has passed its pickle.
    Only torch's zip format (torch >= 1.6) is read; TorchScript archives and zips whose entries
    could be read differently by Python and by torch (two pickles, repeated names, several
    roots) are refused. The bytes checked are the bytes torch.load is given."""
    label = name or (src if isinstance(src, str) else "checkpoint")
    if isinstance(src, (bytes, bytearray)):
        data = bytes(src)
    elif isinstance(src, str):
        with open(src, "rb") as f:
            data = f.read()
    else:
        data = src.read()
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            names = z.namelist()
            pickles = [n for n in names if n.endswith(".pkl")]
            roots = {n.split("/", 1)[0] for n in names}
            if (
                len(names) != len(set(names))
                or len(roots) != 1
                or len(pickles) != 1
                or pickles[0] != f"{roots.pop()}/data.pkl"
            ):
                raise UnsafeCheckpoint(
                    f"{label}: refusing to load: not a torch.save archive "
                    "(one root folder holding one data.pkl and no repeated names)"
                )
            check_pickle(z.read(pickles[0]), label)
    except zipfile.BadZipFile:
        raise UnsafeCheckpoint(
            f"{label}: refusing to load: not a zip-format torch file " "(torch.save writes these since torch 1.6)"
        ) from None
    return torch.load(io.BytesIO(data), map_location=map_location)


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
            f.write(data[i : i + size])
        names.append(name)
    for name in names:
        os.replace(os.path.join(out_dir, name + ".tmp"), os.path.join(out_dir, name))
    index = {
        "version": 1,
        "step": int(state.get("step", 0)),
        "parts": names,
        "bytes": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
    }
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
    deltas = [(e.float().cpu() - model[n].float().cpu()).to(torch.bfloat16) for n, e in zip(param_names, state["ema"])]
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
    state = load_torch(io.BytesIO(data), map_location, name=out_dir)
    if "ema_delta" in state:
        model = state["model"]
        state["ema"] = [model[n].float() + d.float() for n, d in zip(state.pop("ema_names"), state.pop("ema_delta"))]
    return state
