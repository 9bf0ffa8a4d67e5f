"""MoC reference on one sequence, stream order, MOC.md §3 and §4 (the attention exchange file).

Inputs are numpy arrays or torch tensors:
    q, k, v            float32 [H, N, D]
    chunk_start/end    int32 [C], stream token ranges, contiguous, covering [0, N)
    chunk_shot         int32 [C], -1 for the global caption
    chunk_kind         int32 [C], 0 text / 1 video
Optional routing view (MOC.md §3b): q_route, k_route float32 [H, N, D], both or neither;
routing then scores q_route against chunk means of k_route, attention still uses q, k, v.
Outputs are numpy: routed int32 [H, N, top_k] (descending score, -1 padded; all -1 for text
queries), out float32 [H, N, D], sparsity float.

`route` / `moc_attention` are the vectorised path (the same code the model trains with, moc.py);
`route_naive` / `attention_naive` are plain loops over queries written straight from the
contract, the oracle the vectorised path is tested against. To compare with the TypeScript CPU
reference, load the shared safetensors case and call `moc_attention`.
"""
from __future__ import annotations

from typing import Tuple

import numpy as np
import torch

from . import moc

MODES = ("moc", "dense", "shot")


def _np(x, dtype) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    return np.asarray(x, dtype=dtype)


def validate_chunks(n_tokens: int, start, end, shot, kind) -> None:
    """Raise ValueError naming the problem (gaps, overlaps, out of range, bad kind/shot)."""
    s, e, sh, kd = (_np(a, np.int64) for a in (start, end, shot, kind))
    C = len(s)
    if not (len(e) == len(sh) == len(kd) == C) or C == 0:
        raise ValueError("chunk columns must be non-empty and of equal length")
    if s[0] != 0:
        raise ValueError(f"chunk 0 starts at {s[0]}, expected 0")
    for c in range(C):
        if e[c] <= s[c]:
            raise ValueError(f"chunk {c} is empty or reversed ({s[c]}..{e[c]})")
        if c + 1 < C and e[c] != s[c + 1]:
            raise ValueError(f"chunk {c} ends at {e[c]} but chunk {c + 1} starts at {s[c + 1]} (gap or overlap)")
        if kd[c] not in (0, 1):
            raise ValueError(f"chunk {c} has kind {kd[c]}, expected 0 (text) or 1 (video)")
        if sh[c] < -1:
            raise ValueError(f"chunk {c} has shot {sh[c]}, expected >= -1")
    if e[-1] != n_tokens:
        raise ValueError(f"chunks cover {e[-1]} tokens, q has {n_tokens}")


def _prepare(q, k, start, end, shot, kind):
    qt = torch.as_tensor(_np(q, np.float32))
    kt = torch.as_tensor(_np(k, np.float32))
    if qt.ndim != 3 or kt.shape != qt.shape:
        raise ValueError(f"q and k must both be [H, N, D], got {tuple(qt.shape)} and {tuple(kt.shape)}")
    validate_chunks(qt.shape[1], start, end, shot, kind)
    ch = moc.Chunks.from_columns(start, end, shot, kind)
    return qt[None], kt[None], ch  # [1, H, N, D]


def route(q, k, chunk_start, chunk_end, chunk_shot, chunk_kind, top_k: int, causal: bool = True) -> np.ndarray:
    """Routed chunk indices, int32 [H, N, top_k] (pass q_route, k_route as q, k for a view)."""
    if top_k < 0:
        raise ValueError(f"top_k must be >= 0, got {top_k}")
    qb, kb, ch = _prepare(q, k, chunk_start, chunk_end, chunk_shot, chunk_kind)
    return moc.route(qb, kb, ch, top_k, causal)[0].numpy().astype(np.int32)


def route_view(q, k, q_route, k_route):
    """The (q, k) routing scores with: the view when given (both or neither), else q, k."""
    if (q_route is None) != (k_route is None):
        raise ValueError("q_route and k_route come together (a routing view needs both or neither)")
    if q_route is None:
        return q, k
    for name, x in (("q_route", q_route), ("k_route", k_route)):
        if tuple(np.shape(x)) != tuple(np.shape(q)):
            raise ValueError(f"{name} must be [H, N, D] like q {tuple(np.shape(q))}, got {tuple(np.shape(x))}")
    return q_route, k_route


def moc_attention(
    q,
    k,
    v,
    chunk_start,
    chunk_end,
    chunk_shot,
    chunk_kind,
    top_k: int,
    causal: bool = True,
    mode: str = "moc",
    q_route=None,
    k_route=None,
    causal_text: bool = False,
) -> Tuple[np.ndarray, np.ndarray, float]:
    """(out [H, N, D] f32, routed [H, N, top_k] int32, sparsity) for mode moc / dense / shot;
    routing by q_route, k_route when given (MOC.md §3b); causal_text (MOC.md §3b, moc mode): only
    captions of shots <= the query's are mandatory."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    if top_k < 0:
        raise ValueError(f"top_k must be >= 0, got {top_k}")
    qb, kb, ch = _prepare(q, k, chunk_start, chunk_end, chunk_shot, chunk_kind)
    vb = torch.as_tensor(_np(v, np.float32))[None]
    if vb.shape != qb.shape:
        raise ValueError(f"v must be [H, N, D] like q, got {tuple(vb.shape[1:])}")
    H, N = qb.shape[1], qb.shape[2]
    routed = torch.full((1, H, N, top_k), -1, dtype=torch.long)
    if mode == "dense":
        allowed = None
    elif mode == "shot":
        allowed = moc.shot_mask(ch)[None, None]  # [1, 1, N, C]
    else:
        qr, kr = route_view(q, k, q_route, k_route)
        qrb, krb, _ = _prepare(qr, kr, chunk_start, chunk_end, chunk_shot, chunk_kind)
        routed = moc.route(qrb, krb, ch, top_k, causal)  # [1, H, N, K]
        allowed = moc.mandatory_mask(ch, causal_text)[None, None] | moc.routed_table(routed, ch.n_chunks)
    with torch.no_grad():
        out = moc.attend(qb, kb, vb, allowed, ch.token_chunk, backend="plain")
    return (out[0].numpy().astype(np.float32), routed[0].numpy().astype(np.int32), moc.sparsity(allowed, ch))


# ---- plain loops, straight from the contract (the oracle for tests) -------------------------
def route_naive(q, k, chunk_start, chunk_end, chunk_shot, chunk_kind, top_k: int, causal: bool = True) -> np.ndarray:
    q, k = _np(q, np.float32), _np(k, np.float32)
    s, e, sh, kd = (_np(a, np.int64) for a in (chunk_start, chunk_end, chunk_shot, chunk_kind))
    H, N, D = q.shape
    C = len(s)
    tok_chunk = np.repeat(np.arange(C), e - s)
    desc = np.stack([k[:, s[c] : e[c]].astype(np.float64).mean(1) for c in range(C)], 1)  # [H, C, D]
    desc = desc.astype(np.float32)
    routed = np.full((H, N, top_k), -1, np.int32)
    for i in range(N):
        ci = tok_chunk[i]
        if kd[ci] != 1:
            continue  # text queries do not route
        cands = [c for c in range(C) if kd[c] == 1 and sh[c] != sh[ci] and (not causal or c < ci)]
        for h in range(H):
            scored = [(-float(np.dot(q[h, i].astype(np.float32), desc[h, c])), c) for c in cands]
            scored.sort()  # highest score first, ties to the lower index
            for slot, (_, c) in enumerate(scored[:top_k]):
                routed[h, i, slot] = c
    return routed


def attention_naive(
    q,
    k,
    v,
    chunk_start,
    chunk_end,
    chunk_shot,
    chunk_kind,
    routed: np.ndarray,
    mode: str = "moc",
    causal_text: bool = False,
) -> np.ndarray:
    q, k, v = (_np(a, np.float64) for a in (q, k, v))
    s, e, sh, kd = (_np(a, np.int64) for a in (chunk_start, chunk_end, chunk_shot, chunk_kind))
    H, N, D = q.shape
    tok_chunk = np.repeat(np.arange(len(s)), e - s)
    out = np.zeros((H, N, D))
    for h in range(H):
        for i in range(N):
            si = sh[tok_chunk[i]]
            if mode == "dense":
                keys = np.arange(N)
            else:
                if mode == "shot":
                    chunks = [c for c in range(len(s)) if sh[c] == -1 or sh[c] == si]
                else:
                    chunks = [
                        c for c in range(len(s)) if (kd[c] == 0 and (not causal_text or sh[c] <= si)) or sh[c] == si
                    ]
                    chunks += [int(c) for c in routed[h, i] if c >= 0]
                keys = np.concatenate([np.arange(s[c], e[c]) for c in sorted(set(chunks))])
            logits = k[h, keys] @ q[h, i] / np.sqrt(D)
            p = np.exp(logits - logits.max())
            out[h, i] = (p / p.sum()) @ v[h, keys]
    return out.astype(np.float32)


# ---- the attention exchange file (MOC.md §4), the same files `moc attention` reads/writes ----
def run_exchange(in_path: str, out_path: str) -> None:
    from .safetensors_io import load, save

    t, meta = load(in_path)
    for name in ("q", "k", "v"):
        if name not in t or t[name].dtype != np.float32 or t[name].ndim != 3:
            raise ValueError(f"tensor {name!r} must be float32 [H, N, D]")
    for name in ("chunk_start", "chunk_end", "chunk_shot", "chunk_kind"):
        if name not in t or t[name].dtype != np.int32 or t[name].ndim != 1:
            raise ValueError(f"tensor {name!r} must be int32 [C]")
    for name in ("q_route", "k_route"):
        if name in t and (t[name].dtype != np.float32 or t[name].shape != t["q"].shape):
            raise ValueError(f"tensor {name!r} must be float32 [H, N, D] like q")
    top_k = int(meta.get("top_k", "0"))
    causal = meta.get("causal", "true") == "true"
    mode = meta.get("mode", "moc")
    causal_text = meta.get("causal_text", "false")
    if causal_text not in ("true", "false"):
        raise ValueError(f"__metadata__ causal_text {causal_text!r} must be 'true' or 'false'")
    out, routed, sp = moc_attention(
        t["q"],
        t["k"],
        t["v"],
        t["chunk_start"],
        t["chunk_end"],
        t["chunk_shot"],
        t["chunk_kind"],
        top_k,
        causal,
        mode,
        t.get("q_route"),
        t.get("k_route"),
        causal_text == "true",
    )
    save(out_path, {"out": out, "routed": routed}, {"sparsity": repr(sp)})


if __name__ == "__main__":
    import sys

    if len(sys.argv) != 3:
        sys.exit("usage: python3 -m train.routing_ref IN.safetensors OUT.safetensors")
    try:
        run_exchange(sys.argv[1], sys.argv[2])
    except ValueError as e:
        sys.exit(f"moc attention: {e}")
