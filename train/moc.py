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
token_chunk[j]] (a broadcast copy per run of equal chunk ids where the key order has such runs,
see expand_keys), so the largest mask alive is [B, H, q_tile, N]. That is a dense masked path:
the FLOPs are those of dense attention (the sparsity is real for the kernel, not here), which is
fine at training lengths (a few thousand to ~10k tokens). With `checkpoint=True` (training)
each tile is recomputed in backward, so memory stays O(q_tile * N) per layer rather than
O(N^2). On PyTorch >= 2.5 `backend="flex"` hands the same table to flex_attention as a
mask_mod (block-sparse, opt-in; not exercised by the 1.13 CI).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Optional

import numpy as np
import torch
import torch.nn.functional as F
import torch.utils.checkpoint

from .layout import TEXT, VIDEO  # the chunk kinds, defined once (layout.py)

HAS_SDPA = hasattr(F, "scaled_dot_product_attention")


@dataclass
class Chunks:
    start: torch.Tensor  # [C] long, stream token index
    end: torch.Tensor  # [C] long, exclusive
    kind: torch.Tensor  # [C] long, 0 text / 1 video
    shot: torch.Tensor  # [C] long, -1 global caption
    token_chunk: torch.Tensor  # [N] long, chunk id of each token (in q/k/v storage order)

    @property
    def n_chunks(self) -> int:
        return int(self.start.shape[0])

    @property
    def n_tokens(self) -> int:
        return int(self.token_chunk.shape[0])

    def length(self) -> torch.Tensor:
        return self.end - self.start  # [C]

    @staticmethod
    def from_layout(layout, device=None) -> "Chunks":
        t = lambda a: torch.as_tensor(np.asarray(a, np.int64), device=device)
        return Chunks(
            t(layout.chunk_start),
            t(layout.chunk_end),
            t(layout.chunk_kind),
            t(layout.chunk_shot),
            t(layout.token_chunk),
        )

    @staticmethod
    def from_columns(start, end, shot, kind, device=None) -> "Chunks":
        """Stream-ordered tokens: token_chunk follows from the (validated) ranges."""
        t = lambda a: torch.as_tensor(np.asarray(a, np.int64), device=device)
        s, e = t(start), t(end)
        token_chunk = torch.repeat_interleave(torch.arange(len(s), device=device), e - s)
        return Chunks(s, e, t(kind), t(shot), token_chunk)


# ---- chunk-level masks ----------------------------------------------------------------------
def mandatory_mask(ch: Chunks, causal_text: bool = False) -> torch.Tensor:
    """M(i): every text chunk plus every chunk of the query's own shot. [N, C] bool.
    causal_text (MOC.md §3b): only the text chunks of shots <= the query's (the global caption,
    shot -1, sees itself), so no token depends on a later shot's caption."""
    tok_shot = ch.shot[ch.token_chunk]  # [N]
    text = (ch.kind == TEXT)[None, :]  # [1, C]
    if causal_text:
        text = text & (ch.shot[None, :] <= tok_shot[:, None])  # [N, C]
    return text | (ch.shot[None, :] == tok_shot[:, None])


def shot_mask(ch: Chunks) -> torch.Tensor:
    """Shot-independent mode: the global caption plus the query's own shot (caption + frames),
    i.e. each shot generated on its own with the global caption. [N, C] bool."""
    tok_shot = ch.shot[ch.token_chunk]  # [N]
    return (ch.shot == -1)[None, :] | (ch.shot[None, :] == tok_shot[:, None])


def candidate_mask(ch: Chunks, causal: bool) -> torch.Tensor:
    """Routing candidates: video chunks outside M(i), for video queries only. [N, C] bool.
    (causal_text changes only the text of M(i), so the candidates are the same with it.)"""
    cand = (ch.kind == VIDEO)[None, :] & ~mandatory_mask(ch)  # [N, C]
    cand &= (ch.kind[ch.token_chunk] == VIDEO)[:, None]  # text queries don't route
    if causal:
        cid = torch.arange(ch.n_chunks, device=cand.device)
        cand &= cid[None, :] < ch.token_chunk[:, None]  # edges go backwards
    return cand


# ---- routing --------------------------------------------------------------------------------
def _no_autocast(device_type: str):
    return torch.autocast(device_type=device_type, enabled=False)


def chunk_means(k: torch.Tensor, ch: Chunks) -> torch.Tensor:
    """phi(K_c): mean key of every chunk, in f32. k [B, H, N, D] -> [B, H, C, D]."""
    B, H, N, D = k.shape
    sums = torch.zeros(B, H, ch.n_chunks, D, device=k.device, dtype=torch.float32)
    sums.index_add_(2, ch.token_chunk, k.float())  # [B, H, C, D]
    return sums / ch.length().to(torch.float32)[None, None, :, None]


MAX_CHUNKS = 1 << 16  # route() packs the chunk index into 16 bits of its sort key


def _route_keys(scores: torch.Tensor, cand: torch.Tensor) -> torch.Tensor:
    """One int64 key per (query, chunk) whose descending order is exactly the routing order:
    score descending, ties to the lower chunk index, non-candidates (-inf) last. This is the
    order of a stable descending sort of the masked scores, as a key `topk` can select on.

    scores [B, H, N, C] f32 (consumed: modified in place), cand [N, C] bool -> [B, H, N, C] int64
        s   = scores + 0.0, every NaN made the one positive NaN, -inf where not a candidate
              (-0.0 == +0.0 and NaN == NaN > +inf for the sort, so they must share a key)
        k32 = bits ^ ((bits >> 31) & 0x7fffffff)   (bits = s as int32: orders floats as ints)
        key = k32 * 2^16 + (2^16 - 1 - c)          (== (k32 << 16) | (65535 - c), C <= 2^16)
    """
    C = scores.shape[-1]
    if C > MAX_CHUNKS:
        raise ValueError(f"route() supports at most {MAX_CHUNKS} chunks, got {C}")
    s = scores.add_(0.0)  # [B, H, N, C] -0.0 -> +0.0
    s = s.masked_fill_(torch.isnan(s), float("nan"))  # one NaN payload and sign
    s = s.masked_fill_(~cand, float("-inf"))  # non-candidates last
    bits = s.view(torch.int32)  # [B, H, N, C]
    k32 = (bits >> 31).bitwise_and_(0x7FFFFFFF).bitwise_xor_(bits)  # order-preserving int32
    tie = MAX_CHUNKS - 1 - torch.arange(C, device=s.device)  # [C] lower index wins
    return torch.add(tie, k32, alpha=MAX_CHUNKS)  # [B, H, N, C] int64


def route(
    q: torch.Tensor, k: torch.Tensor, ch: Chunks, top_k: int, causal: bool = True, cand: Optional[torch.Tensor] = None
) -> torch.Tensor:
    """Routed chunks per query: [B, H, N, top_k] long, descending score, -1 padded.

    Score = q[h, i] . mean_{t in c} k[h, t] (raw dot product, f32). Ties go to the lower chunk
    index. Text queries and queries without candidates get all -1. Selected with `topk` on the
    unique integer keys of `_route_keys` (no full sort over C): the same ids in the same order
    as a stable descending sort of the masked scores (tests compare the two bit for bit).
    """
    B, H, N, D = q.shape
    C = ch.n_chunks
    if cand is None:
        cand = candidate_mask(ch, causal)  # [N, C]
    kk = min(top_k, C)
    if kk <= 0:
        return torch.full((B, H, N, max(top_k, 0)), -1, dtype=torch.long, device=q.device)
    with torch.no_grad(), _no_autocast(q.device.type):  # scores in f32, also under AMP
        desc = chunk_means(k.detach(), ch)  # [B, H, C, D]
        scores = torch.matmul(q.detach().float(), desc.transpose(-1, -2))  # [B, H, N, C]
        keys = _route_keys(scores, cand)  # [B, H, N, C] int64
        order = torch.topk(keys, kk, dim=-1, sorted=True).indices  # [B, H, N, kk]
        n_cand = cand.sum(-1)  # [N]
        valid = torch.arange(kk, device=q.device)[None, :] < n_cand[:, None]  # [N, kk]
        routed = torch.where(valid, order, torch.full_like(order, -1))
        if kk < top_k:
            routed = F.pad(routed, (0, top_k - kk), value=-1)  # [B, H, N, K]
    return routed


def _routed_table_spare(routed: torch.Tensor, n_chunks: int) -> torch.Tensor:
    """[B, H, N, K] chunk ids (-1 unused) -> [B, H, N, C + 1] bool; unused ids land in the spare
    last column, so further scatters may aim there to write nothing."""
    B, H, N, K = routed.shape
    table = torch.zeros(B, H, N, n_chunks + 1, dtype=torch.bool, device=routed.device)
    idx = torch.where(routed < 0, torch.full_like(routed, n_chunks), routed)
    return table.scatter_(-1, idx, True)


def routed_table(routed: torch.Tensor, n_chunks: int) -> torch.Tensor:
    """[B, H, N, K] chunk ids (-1 unused) -> [B, H, N, C] bool."""
    return _routed_table_spare(routed, n_chunks)[..., :n_chunks]


DROP_IN_TAIL = 1e-6  # drop-in caps its Poisson draw where the tail beyond is below this


@lru_cache(maxsize=64)
def drop_in_cap(lam: float, n_chunks: int, tail: float = DROP_IN_TAIL) -> int:
    """Most chunks drop-in adds per query: min(C, max(8, n)) with n the smallest count such that
    P(Poisson(lam) > n) < `tail` (computed exactly from the pmf, in log space). A draw above the
    cap is truncated to it: probability < 1e-6 per query, and only then with more than cap
    eligible chunks. (lam + 6 sqrt(lam) is NOT enough: its tail reaches 7e-6 near lam = 1.3.)"""
    n, cdf = 0, 0.0
    while n < n_chunks:
        cdf += math.exp(n * math.log(lam) - lam - math.lgamma(n + 1))  # + P(X = n)
        if 1.0 - cdf < tail and n >= 8:
            break
        n += 1
    return min(n_chunks, max(8, n))


def drop_off_in(
    routed: torch.Tensor, cand: torch.Tensor, p_max: float, lam: float, generator: Optional[torch.Generator] = None
) -> torch.Tensor:
    """Training regularisers (paper §3), per query: drop floor(U(0, p_max) * K) of the routed
    chunks (context drop-off; all of them where fewer are routed), then add min(Poisson(lam),
    cap) chunks drawn uniformly without replacement from the candidates not in the remaining
    routed set (drop-in; a chunk just dropped may come back, as before; cap = drop_in_cap,
    which truncates a Poisson tail of probability < 1e-6).
    routed [B, H, N, K] (route's ids, -1 unused), cand [N, C] bool -> routed set [B, H, N, C] bool.

    Drop-off ranks the <= K routed slots by random keys (a K x K comparison, no sort); drop-in
    takes the top `cap` of random keys over the eligible chunks (one topk, no sort over C)."""
    B, H, N, K = routed.shape
    C = cand.shape[-1]
    dev = routed.device
    rand = lambda *s: torch.rand(*s, device=dev, generator=generator)
    if p_max > 0 and K > 0:
        n_drop = torch.floor(rand(B, H, N) * p_max * K)  # [B, H, N]
        r = torch.where(routed >= 0, rand(B, H, N, K), torch.full((), 2.0, device=dev))  # unused last
        rj, rk = r[..., None, :], r[..., :, None]  # [B, H, N, 1, K], [.., K, 1]
        slot = torch.arange(K, device=dev)
        lower = slot[:, None] > slot[None, :]  # [K(k), K(j)] j < k
        rank = ((rj < rk) | ((rj == rk) & lower)).sum(-1)  # [B, H, N, K] a permutation
        routed = torch.where(rank < n_drop[..., None], torch.full_like(routed, -1), routed)
    table = _routed_table_spare(routed, C)  # [B, H, N, C + 1]
    if lam > 0 and C > 0:
        cap = drop_in_cap(lam, C)
        n_in = torch.poisson(torch.full((B, H, N), float(lam), device=dev), generator=generator)
        not_cand = F.pad(~cand, (0, 1), value=True)  # [N, C + 1] spare: never
        r = rand(B, H, N, C + 1).masked_fill_(not_cand, -1.0)  # [B, H, N, C + 1]
        r.masked_fill_(table, -1.0)  # eligible: cand, not routed
        top = torch.topk(r, cap, dim=-1, sorted=True)  # [B, H, N, cap] desc
        take = (torch.arange(cap, device=dev) < n_in[..., None]) & (top.values >= 0)
        idx = torch.where(take, top.indices, torch.full_like(top.indices, C))
        table.scatter_(-1, idx, True)  # spare column absorbs the rest
    return table[..., :C]


def sparsity(allowed: Optional[torch.Tensor], ch: Chunks) -> float:
    """1 - sum_i |Omega(i)| / N^2, averaged over batch items and heads (dense: 0)."""
    if allowed is None:
        return 0.0
    N = ch.n_tokens
    visited = (allowed.float() * ch.length().float()).sum(-1)  # [B|1, H|1, N]
    return 1.0 - float(visited.mean(dim=(0, 1)).sum()) / float(N * N)


# ---- attention --------------------------------------------------------------------------------
def _attend_plain(q, k, v, mask):
    """q [B, H, t, D], k/v [B, H, N, D], mask [B|1, H|1, t, N] (bool, or an additive float
    bias as SDPA takes it) or None -> [B, H, t, D]."""
    s = torch.matmul(q, k.transpose(-1, -2)).float() * (1.0 / math.sqrt(q.shape[-1]))  # [B, H, t, N]
    if mask is not None:
        s = s.masked_fill(~mask, float("-inf")) if mask.dtype == torch.bool else s + mask.float()
    return torch.matmul(s.softmax(-1).to(v.dtype), v)


MAX_RUN_SEGMENTS = 8  # key orders with more distinct run-length segments use the plain gather


def key_runs(key_chunk: torch.Tensor):
    """Run structure of a key storage order, or None where it does not pay: the maximal runs
    of equal chunk id, grouped into segments of consecutive runs of one length. The model's
    [text; video] order is two segments (captions of L tokens, then chunks of chunk_frames
    frames; a shorter last chunk per shot adds segments). Found once per key_chunk tensor
    (one host copy) and cached on it, so key_chunk must not be modified in place afterwards.
    key_chunk [N] -> (run_chunk [R] long on its device, ((tok0, tok1, run0, run1, L), ...)) | None
    """
    cached = getattr(key_chunk, "_moc_key_runs", None)
    if cached is not None:
        return cached[0]
    kc = key_chunk.detach().cpu().numpy()
    N = kc.shape[0]
    runs = None
    if N > 0:
        starts = np.concatenate([[0], np.nonzero(kc[1:] != kc[:-1])[0] + 1])  # [R]
        lens = np.diff(np.append(starts, N))  # [R]
        cut = np.concatenate([[0], np.nonzero(lens[1:] != lens[:-1])[0] + 1, [len(lens)]])
        if len(cut) - 1 <= MAX_RUN_SEGMENTS and 2 * len(lens) <= N:
            segs = tuple(
                (int(starts[a]), int(starts[a]) + int(lens[a]) * int(b - a), int(a), int(b), int(lens[a]))
                for a, b in zip(cut[:-1], cut[1:])
            )
            runs = (torch.as_tensor(kc[starts], device=key_chunk.device), segs)
    key_chunk._moc_key_runs = (runs,)
    return runs


def expand_keys(table: torch.Tensor, key_chunk: torch.Tensor) -> torch.Tensor:
    """Per-chunk values to per-key values: table[..., key_chunk], [..., C] -> [..., N].
    Where key_runs finds runs, gathers once per run ([..., R]) and writes each segment as a
    broadcast copy [..., n_runs, 1] -> [..., n_runs, L] (same values, bit for bit, no per-token
    index load); otherwise the plain gather."""
    runs = key_runs(key_chunk)
    if runs is None:
        return table[..., key_chunk]  # [..., N]
    run_chunk, segs = runs
    lead = table.shape[:-1]
    per_run = table[..., run_chunk]  # [..., R]
    out = table.new_empty(*lead, key_chunk.shape[0])  # [..., N]
    for t0, t1, r0, r1, L in segs:
        out[..., t0:t1].view(*lead, r1 - r0, L).copy_(per_run[..., r0:r1, None])  # [..., n, L]
    return out


def mask_bias(allowed_tile: torch.Tensor, key_chunk: torch.Tensor, dtype) -> torch.Tensor:
    """Additive attention bias straight from the chunk table: 0 where a key's chunk is allowed,
    -inf elsewhere. [B|1, H|1, t, C] bool -> [B|1, H|1, t, N] `dtype`. SDPA would turn a boolean
    mask into exactly this, one more pass over t x N."""
    table = torch.zeros(allowed_tile.shape, dtype=dtype, device=allowed_tile.device)
    return expand_keys(table.masked_fill_(~allowed_tile, float("-inf")), key_chunk)


def _attend_tile(q, k, v, allowed_tile, key_chunk, use_sdpa: bool):
    if use_sdpa:
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask_bias(allowed_tile, key_chunk, q.dtype))
    return _attend_plain(q, k, v, expand_keys(allowed_tile, key_chunk))  # bool [B|1, H|1, t, N]


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


def attend(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    allowed: Optional[torch.Tensor],
    key_chunk: torch.Tensor,
    backend: str = "auto",
    q_tile: int = 1024,
    checkpoint: bool = False,
) -> torch.Tensor:
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
        return F.scaled_dot_product_attention(q, k, v)  # [B, H, N, D]
    if allowed is not None and backend == "flex":
        return _attend_flex(q, k, v, allowed, key_chunk)
    N = q.shape[2]
    outs = []
    for i0 in range(0, N, q_tile):
        i1 = min(N, i0 + q_tile)
        qt = q[:, :, i0:i1]  # [B, H, t, D]
        if allowed is None:
            fn = lambda qt_, k_, v_: _attend_plain(qt_, k_, v_, None)
            args = (qt, k, v)
        else:
            fn = lambda qt_, k_, v_, a_: _attend_tile(qt_, k_, v_, a_, key_chunk, use_sdpa)
            args = (qt, k, v, allowed[:, :, i0:i1])  # a_ [B|1, H|1, t, C]
        if checkpoint and torch.is_grad_enabled():
            outs.append(torch.utils.checkpoint.checkpoint(fn, *args, use_reentrant=False))
        else:
            outs.append(fn(*args))
    return torch.cat(outs, dim=2)  # [B, H, N, D]
