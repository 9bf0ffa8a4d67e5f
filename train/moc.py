"""Mixture-of-Contexts attention in PyTorch, batched: chunk tables, routing, masks, attention.

Implements MOC.md §3 exactly (the contract shared with the TypeScript CPU reference and the
WGSL kernels). Dimension legend:
    B batch, H heads, N tokens, D head dim, C chunks, K routed chunks per query (top_k)
Tokens may be stored in any order: a `Chunks` carries `token_chunk` [N], the stream-order
chunk id of every token, and chunk ids are what "earlier" means for causal routing.

Masks are built at chunk granularity, never as an N x N tensor up front:
    mandatory / candidates / shot-only:  [N, C] bool (same for every batch item and head)
    allowed = mandatory | routed:        [B, H, N, C] bool
Attention expands `allowed` to keys one query tile at a time, mask[i, j] = allowed[i,
token_chunk[j]], so the largest mask alive is [B, H, q_tile, N]. That is a dense masked path:
the FLOPs are those of dense attention (the sparsity is real for the kernel, not here), which is
fine at training lengths (a few thousand to ~10k tokens). With `checkpoint=True` (training)
each tile is recomputed in backward, so memory stays O(q_tile * N) per layer rather than
O(N^2). On PyTorch >= 2.5 `backend="flex"` hands the same table to flex_attention as a
mask_mod (block-sparse, opt-in; not exercised by the 1.13 CI).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import numpy as np
import torch
import torch.nn.functional as F
import torch.utils.checkpoint

TEXT, VIDEO = 0, 1
HAS_SDPA = hasattr(F, "scaled_dot_product_attention")


@dataclass
class Chunks:
    start: torch.Tensor        # [C] long, stream token index
    end: torch.Tensor          # [C] long, exclusive
    kind: torch.Tensor         # [C] long, 0 text / 1 video
    shot: torch.Tensor         # [C] long, -1 global caption
    token_chunk: torch.Tensor  # [N] long, chunk id of each token (in q/k/v storage order)

    @property
    def n_chunks(self) -> int:
        return int(self.start.shape[0])

    @property
    def n_tokens(self) -> int:
        return int(self.token_chunk.shape[0])

    def length(self) -> torch.Tensor:
        return self.end - self.start                                    # [C]

    @staticmethod
    def from_layout(layout, device=None) -> "Chunks":
        t = lambda a: torch.as_tensor(np.asarray(a, np.int64), device=device)
        return Chunks(t(layout.chunk_start), t(layout.chunk_end), t(layout.chunk_kind),
                      t(layout.chunk_shot), t(layout.token_chunk))

    @staticmethod
    def from_columns(start, end, shot, kind, device=None) -> "Chunks":
        """Stream-ordered tokens: token_chunk follows from the (validated) ranges."""
        t = lambda a: torch.as_tensor(np.asarray(a, np.int64), device=device)
        s, e = t(start), t(end)
        token_chunk = torch.repeat_interleave(torch.arange(len(s), device=device), e - s)
        return Chunks(s, e, t(kind), t(shot), token_chunk)


# ---- chunk-level masks ----------------------------------------------------------------------
def mandatory_mask(ch: Chunks) -> torch.Tensor:
    """M(i): every text chunk plus every chunk of the query's own shot. [N, C] bool."""
    tok_shot = ch.shot[ch.token_chunk]                                  # [N]
    return (ch.kind == TEXT)[None, :] | (ch.shot[None, :] == tok_shot[:, None])


def shot_mask(ch: Chunks) -> torch.Tensor:
    """Shot-independent mode: the global caption plus the query's own shot (caption + frames),
    i.e. each shot generated on its own with the global caption. [N, C] bool."""
    tok_shot = ch.shot[ch.token_chunk]                                  # [N]
    return (ch.shot == -1)[None, :] | (ch.shot[None, :] == tok_shot[:, None])


def candidate_mask(ch: Chunks, causal: bool) -> torch.Tensor:
    """Routing candidates: video chunks outside M(i), for video queries only. [N, C] bool."""
    cand = (ch.kind == VIDEO)[None, :] & ~mandatory_mask(ch)            # [N, C]
    cand &= (ch.kind[ch.token_chunk] == VIDEO)[:, None]                 # text queries don't route
    if causal:
        cid = torch.arange(ch.n_chunks, device=cand.device)
        cand &= cid[None, :] < ch.token_chunk[:, None]                  # edges go backwards
    return cand


# ---- routing --------------------------------------------------------------------------------
def _no_autocast(device_type: str):
    return torch.autocast(device_type=device_type, enabled=False)


def chunk_means(k: torch.Tensor, ch: Chunks) -> torch.Tensor:
    """phi(K_c): mean key of every chunk, in f32. k [B, H, N, D] -> [B, H, C, D]."""
    B, H, N, D = k.shape
    sums = torch.zeros(B, H, ch.n_chunks, D, device=k.device, dtype=torch.float32)
    sums.index_add_(2, ch.token_chunk, k.float())                       # [B, H, C, D]
    return sums / ch.length().to(torch.float32)[None, None, :, None]


def route(q: torch.Tensor, k: torch.Tensor, ch: Chunks, top_k: int, causal: bool = True,
          cand: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Routed chunks per query: [B, H, N, top_k] long, descending score, -1 padded.

    Score = q[h, i] . mean_{t in c} k[h, t] (raw dot product, f32). Ties go to the lower chunk
    index (stable sort). Text queries and queries without candidates get all -1.
    """
    B, H, N, D = q.shape
    C = ch.n_chunks
    if cand is None:
        cand = candidate_mask(ch, causal)                               # [N, C]
    with torch.no_grad(), _no_autocast(q.device.type):                # scores in f32, also under AMP
        desc = chunk_means(k.detach(), ch)                              # [B, H, C, D]
        scores = torch.matmul(q.detach().float(), desc.transpose(-1, -2))  # [B, H, N, C]
        scores = scores.masked_fill(~cand, float("-inf"))
        order = torch.sort(scores, dim=-1, descending=True, stable=True).indices  # [B, H, N, C]
        kk = min(top_k, C)
        order = order[..., :kk]                                         # [B, H, N, kk]
        n_cand = cand.sum(-1)                                           # [N]
        valid = torch.arange(kk, device=q.device)[None, :] < n_cand[:, None]  # [N, kk]
        routed = torch.where(valid, order, torch.full_like(order, -1))
        if kk < top_k:
            routed = F.pad(routed, (0, top_k - kk), value=-1)           # [B, H, N, K]
    return routed


def routed_table(routed: torch.Tensor, n_chunks: int) -> torch.Tensor:
    """[B, H, N, K] chunk ids (-1 unused) -> [B, H, N, C] bool."""
    B, H, N, K = routed.shape
    table = torch.zeros(B, H, N, n_chunks + 1, dtype=torch.bool, device=routed.device)
    idx = torch.where(routed < 0, torch.full_like(routed, n_chunks), routed)
    table.scatter_(-1, idx, True)
    return table[..., :n_chunks]


def drop_off_in(table: torch.Tensor, cand: torch.Tensor, top_k: int, p_max: float, lam: float,
                generator: Optional[torch.Generator] = None) -> torch.Tensor:
    """Training regularisers (paper §3): per query, drop floor(U(0, p_max) * top_k) of the routed
    chunks (context drop-off) and add Poisson(lam) random unselected candidates (drop-in).
    table [B, H, N, C] bool (routed set), cand [N, C] bool -> new routed set [B, H, N, C]."""
    B, H, N, C = table.shape
    dev = table.device
    rand = lambda *s: torch.rand(*s, device=dev, generator=generator)
    if p_max > 0 and top_k > 0:
        n_drop = torch.floor(rand(B, H, N) * p_max * top_k)             # [B, H, N]
        r = torch.where(table, rand(B, H, N, C), torch.full((), 2.0, device=dev))
        rank = r.argsort(-1).argsort(-1)                                # [B, H, N, C] rank among selected first
        table = table & ~(rank < n_drop[..., None])
    if lam > 0:
        n_in = torch.poisson(torch.full((B, H, N), float(lam), device=dev), generator=generator)
        eligible = cand[None, None] & ~table                            # [B, H, N, C]
        r = torch.where(eligible, rand(B, H, N, C), torch.full((), -1.0, device=dev))
        rank = r.argsort(-1, descending=True).argsort(-1)               # eligible first
        table = table | (eligible & (rank < n_in[..., None]))
    return table


def sparsity(allowed: Optional[torch.Tensor], ch: Chunks) -> float:
    """1 - sum_i |Omega(i)| / N^2, averaged over batch items and heads (dense: 0)."""
    if allowed is None:
        return 0.0
    N = ch.n_tokens
    visited = (allowed.float() * ch.length().float()).sum(-1)           # [B|1, H|1, N]
    return 1.0 - float(visited.mean(dim=(0, 1)).sum()) / float(N * N)


# ---- attention --------------------------------------------------------------------------------
def _attend_plain(q, k, v, mask):
    """q [B, H, t, D], k/v [B, H, N, D], mask [B|1, H|1, t, N] (bool, or an additive float
    bias as SDPA takes it) or None -> [B, H, t, D]."""
    s = torch.matmul(q, k.transpose(-1, -2)).float() * (1.0 / math.sqrt(q.shape[-1]))  # [B, H, t, N]
    if mask is not None:
        s = s.masked_fill(~mask, float("-inf")) if mask.dtype == torch.bool else s + mask.float()
    return torch.matmul(s.softmax(-1).to(v.dtype), v)


def mask_bias(allowed_tile: torch.Tensor, key_chunk: torch.Tensor, dtype) -> torch.Tensor:
    """Additive attention bias straight from the chunk table: 0 where a key's chunk is allowed,
    -inf elsewhere. [B|1, H|1, t, C] bool -> [B|1, H|1, t, N] `dtype`. SDPA would turn a boolean
    mask into exactly this, one more pass over t x N."""
    table = torch.zeros(allowed_tile.shape, dtype=dtype, device=allowed_tile.device)
    return table.masked_fill_(~allowed_tile, float("-inf"))[..., key_chunk]


def _attend_tile(q, k, v, allowed_tile, key_chunk, use_sdpa: bool):
    if use_sdpa:
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask_bias(allowed_tile, key_chunk, q.dtype))
    return _attend_plain(q, k, v, allowed_tile[..., key_chunk])         # bool [B|1, H|1, t, N]


_FLEX = None


def _attend_flex(q, k, v, allowed, key_chunk):
    global _FLEX
    from torch.nn.attention.flex_attention import create_block_mask, flex_attention
    if _FLEX is None:
        _FLEX = torch.compile(flex_attention, dynamic=False)
    B, H, N, _ = q.shape
    al = allowed.expand(B, H, N, allowed.shape[-1])

    def mask_mod(b, h, qi, kj):
        return al[b, h, qi, key_chunk[kj]]

    block_mask = create_block_mask(mask_mod, B, H, N, N, device=q.device)
    return _FLEX(q, k, v, block_mask=block_mask)


def attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, allowed: Optional[torch.Tensor],
           key_chunk: torch.Tensor, backend: str = "auto", q_tile: int = 1024,
           checkpoint: bool = False) -> torch.Tensor:
    """softmax(q k^T / sqrt(D)) v over the keys each query may see.

    q, k, v [B, H, N, D]; allowed None (dense) or [B|1, H|1, N, C] bool; key_chunk [N].
    backend: "auto" (SDPA where torch has it, else plain), "plain", "sdpa" or "flex".
    Every query must see at least one key (always true: its own chunk is mandatory).
    """
    if backend not in ("auto", "plain", "sdpa", "flex"):
        raise ValueError(f"unknown attention backend {backend!r}")
    use_sdpa = HAS_SDPA and backend in ("auto", "sdpa", "flex")
    if backend == "sdpa" and not HAS_SDPA:
        raise RuntimeError("backend 'sdpa' needs PyTorch >= 2.0")
    if allowed is None and use_sdpa:
        return F.scaled_dot_product_attention(q, k, v)                  # [B, H, N, D]
    if allowed is not None and backend == "flex":
        return _attend_flex(q, k, v, allowed, key_chunk)
    N = q.shape[2]
    outs = []
    for i0 in range(0, N, q_tile):
        i1 = min(N, i0 + q_tile)
        qt = q[:, :, i0:i1]                                             # [B, H, t, D]
        if allowed is None:
            fn = lambda qt_, k_, v_: _attend_plain(qt_, k_, v_, None)
            args = (qt, k, v)
        else:
            fn = lambda qt_, k_, v_, a_: _attend_tile(qt_, k_, v_, a_, key_chunk, use_sdpa)
            args = (qt, k, v, allowed[:, :, i0:i1])                     # a_ [B|1, H|1, t, C]
        if checkpoint and torch.is_grad_enabled():
            outs.append(torch.utils.checkpoint.checkpoint(fn, *args, use_reentrant=False))
        else:
            outs.append(fn(*args))
    return torch.cat(outs, dim=2)                                       # [B, H, N, D]
