import math
import os
import shutil
import subprocess

import numpy as np
import pytest
import torch

from train import moc
from train.moc import VIDEO
from train.layout import make_layout
from train.routing_ref import attention_naive, moc_attention, route, route_naive, validate_chunks


def case(frames=(3, 2, 4), text_len=3, grid=2, cf=2, H=2, D=8, seed=0):
    lay = make_layout(tuple(frames), text_len, grid, cf)
    N = lay.n_tokens
    g = np.random.default_rng(seed)
    q, k, v = (g.standard_normal((H, N, D)).astype(np.float32) for _ in range(3))
    cols = (lay.chunk_start, lay.chunk_end, lay.chunk_shot, lay.chunk_kind)
    return lay, q, k, v, cols


def test_layout_chunk_table():
    lay = make_layout((3, 2), 4, 2, 2)
    # [G][cap0][f0 f1][f2][cap1][f0 f1]
    assert lay.chunk_kind.tolist() == [0, 0, 1, 1, 0, 1]
    assert lay.chunk_shot.tolist() == [-1, 0, 0, 0, 1, 1]
    assert (lay.chunk_end - lay.chunk_start).tolist() == [4, 4, 8, 4, 4, 8]
    assert lay.chunk_start[0] == 0 and np.all(lay.chunk_start[1:] == lay.chunk_end[:-1])
    assert lay.chunk_end[-1] == lay.n_tokens == 3 * 4 + 5 * 4
    assert sorted(lay.stream_index.tolist()) == list(range(lay.n_tokens))
    # internal token -> chunk agrees with the stream ranges
    stream_chunk = np.repeat(np.arange(lay.n_chunks), lay.chunk_end - lay.chunk_start)
    assert np.array_equal(stream_chunk[lay.stream_index], lay.token_chunk)
    # RoPE time: G=0, cap0=1, shot0 frames 2..4, cap1=5, shot1 frames 6..7
    t_of_chunk = {c: sorted(set(lay.pos[lay.token_chunk == c, 0].tolist())) for c in range(lay.n_chunks)}
    assert t_of_chunk == {0: [0], 1: [1], 2: [2, 3], 3: [4], 4: [5], 5: [6, 7]}


@pytest.mark.parametrize("causal", [True, False])
@pytest.mark.parametrize("top_k", [0, 1, 2, 5])
def test_route_matches_naive_loops(causal, top_k):
    lay, q, k, v, cols = case(seed=top_k + 10 * causal)
    fast = route(q, k, *cols, top_k=top_k, causal=causal)
    slow = route_naive(q, k, *cols, top_k=top_k, causal=causal)
    assert fast.dtype == np.int32 and fast.shape == (2, lay.n_tokens, top_k)
    assert np.array_equal(fast, slow)


@pytest.mark.parametrize("causal_text", [False, True])
@pytest.mark.parametrize("mode", ["moc", "dense", "shot"])
def test_attention_matches_naive(mode, causal_text):
    lay, q, k, v, cols = case(seed=3)
    out, routed, sp = moc_attention(q, k, v, *cols, top_k=2, causal=True, mode=mode, causal_text=causal_text)
    ref = attention_naive(q, k, v, *cols, routed=routed, mode=mode, causal_text=causal_text)
    np.testing.assert_allclose(out, ref, atol=2e-5, rtol=1e-4)
    if mode == "dense":
        assert sp == 0.0 and (routed == -1).all()
    else:
        assert 0.0 < sp < 1.0


def test_causal_text_mandatory_sets():
    lay = make_layout((2, 1, 2), 2, 1, 1)
    # chunks: [G][cap0][f][f][cap1][f][cap2][f][f]
    ch = moc.Chunks.from_columns(lay.chunk_start, lay.chunk_end, lay.chunk_shot, lay.chunk_kind)
    first = ch.start.tolist()  # a query token of every chunk
    rows = lambda m: [[int(c) for c in np.nonzero(m[i].numpy())[0]] for i in first]
    assert rows(moc.mandatory_mask(ch, True)) == [
        [0],
        [0, 1, 2, 3],
        [0, 1, 2, 3],
        [0, 1, 2, 3],
        [0, 1, 4, 5],
        [0, 1, 4, 5],
        [0, 1, 4, 6, 7, 8],
        [0, 1, 4, 6, 7, 8],
        [0, 1, 4, 6, 7, 8],
    ]
    assert rows(moc.mandatory_mask(ch, False))[0] == [0, 1, 4, 6]  # v1: every caption
    assert torch.equal(
        moc.candidate_mask(ch, True),
        (ch.kind == VIDEO)[None, :]
        & ~moc.mandatory_mask(ch, True)
        & (ch.kind[ch.token_chunk] == VIDEO)[:, None]
        & (torch.arange(9)[None, :] < ch.token_chunk[:, None]),
    )


@pytest.mark.parametrize("causal_text", [True, False])
def test_causal_text_no_output_of_a_shot_depends_on_a_later_shot(causal_text):
    """Change every q, k, v of shot 2 (its caption and frames): with causal routing and
    causal_text no output or routed index of the earlier tokens moves; without causal_text the
    earlier shots' outputs move (they attend to shot 2's caption)."""
    lay, q, k, v, cols = case(frames=(2, 3, 2), seed=12)
    later = np.repeat(np.asarray(lay.chunk_shot) == 2, np.asarray(lay.chunk_end) - np.asarray(lay.chunk_start))
    first = int(np.argmax(later))
    assert later[first:].all() and first > 0
    q2, k2, v2 = (x.copy() for x in (q, k, v))
    g = np.random.default_rng(5)
    for x in (q2, k2, v2):
        x[:, first:] = g.standard_normal(x[:, first:].shape)
    a_out, a_routed, _ = moc_attention(q, k, v, *cols, top_k=2, causal=True, causal_text=causal_text)
    b_out, b_routed, _ = moc_attention(q2, k2, v2, *cols, top_k=2, causal=True, causal_text=causal_text)
    assert np.array_equal(a_routed[:, :first], b_routed[:, :first])
    assert np.array_equal(a_out[:, :first], b_out[:, :first]) == causal_text


def test_routing_properties():
    lay, q, k, v, cols = case(frames=(4, 3, 5, 2), cf=1, H=3, seed=5)
    start, end, shot, kind = (np.asarray(c) for c in cols)
    tok_chunk = np.repeat(np.arange(len(start)), end - start)
    K = 3
    routed = route(q, k, *cols, top_k=K, causal=True)
    desc = np.stack([k[:, s:e].mean(1) for s, e in zip(start, end)], 1)  # [H, C, D]
    for h in range(3):
        for i in range(lay.n_tokens):
            c = tok_chunk[i]
            r = routed[h, i]
            if kind[c] == 0:
                assert (r == -1).all(), "text queries never route"
                continue
            used = r[r >= 0]
            n_cand = sum(1 for x in range(len(start)) if kind[x] == 1 and shot[x] != shot[c] and x < c)
            assert len(used) == min(K, n_cand) and (r[len(used) :] == -1).all()
            assert (used < c).all(), "causal edges point backwards"
            assert all(kind[x] == 1 and shot[x] != shot[c] for x in used), "mandatory chunks are never routed"
            assert len(set(used.tolist())) == len(used)
            s = desc[h, used] @ q[h, i]
            assert np.all(np.diff(s) <= 1e-6), "descending score order"


def test_ties_go_to_the_lower_index():
    lay, q, k, v, cols = case(frames=(2, 2, 2), cf=1, seed=1)
    k[:] = 1.0  # every chunk mean is equal -> every score ties
    routed = route(q, k, *cols, top_k=2, causal=True)
    start, end, shot, kind = (np.asarray(c) for c in cols)
    last = lay.n_tokens - 1  # a token of the last frame of shot 2
    video_prev = [c for c in range(len(start)) if kind[c] == 1 and shot[c] < 2]
    assert routed[0, last].tolist() == video_prev[:2]
    assert np.array_equal(routed, route_naive(q, k, *cols, top_k=2, causal=True))


def test_non_causal_routes_forward_too():
    lay, q, k, v, cols = case(frames=(2, 2), cf=1, seed=2)
    routed = route(q, k, *cols, top_k=4, causal=False)
    tok_chunk = np.repeat(np.arange(lay.n_chunks), lay.chunk_end - lay.chunk_start)
    first_video = np.where(np.asarray(cols[3])[tok_chunk] == 1)[0][0]
    assert (routed[:, first_video] > tok_chunk[first_video]).any()


def test_internal_order_routes_like_stream_order():
    """The model stores tokens text-first; routing on that order equals stream-order routing."""
    lay, q, k, v, cols = case(seed=4)
    ch = moc.Chunks.from_layout(lay)
    qi = torch.from_numpy(q[:, lay.stream_index])[None]  # internal order
    ki = torch.from_numpy(k[:, lay.stream_index])[None]
    internal = moc.route(qi, ki, ch, 3, True)[0].numpy()
    stream = route(q, k, *cols, top_k=3)
    assert np.array_equal(internal, stream[:, lay.stream_index])


def test_bad_chunk_tables_are_refused():
    with pytest.raises(ValueError, match="gap or overlap"):
        validate_chunks(10, [0, 4], [5, 10], [-1, 0], [0, 1])
    with pytest.raises(ValueError, match="cover 8 tokens"):
        validate_chunks(10, [0, 4], [4, 8], [-1, 0], [0, 1])
    with pytest.raises(ValueError, match="kind"):
        validate_chunks(8, [0, 4], [4, 8], [-1, 0], [0, 2])
    lay, q, k, v, cols = case()
    with pytest.raises(ValueError, match="top_k"):
        route(q, k, *cols, top_k=-1)


def test_sparsity_counts_visited_pairs():
    lay, q, k, v, cols = case(seed=6)
    out, routed, sp = moc_attention(q, k, v, *cols, top_k=1)
    start, end, shot, kind = (np.asarray(c) for c in cols)
    N, H = lay.n_tokens, 2
    tok_chunk = np.repeat(np.arange(len(start)), end - start)
    visited = 0
    for h in range(H):
        for i in range(N):
            s = shot[tok_chunk[i]]
            chunks = {c for c in range(len(start)) if kind[c] == 0 or shot[c] == s} | set(
                routed[h, i][routed[h, i] >= 0].tolist()
            )
            visited += sum(end[c] - start[c] for c in chunks)
    assert sp == pytest.approx(1 - visited / (H * N * N))


# ---- route(): topk on integer keys against the former full stable sort -----------------------
def _route_sort_ref(q, k, ch, top_k, causal=True, cand=None):
    """The former route(): a stable descending sort over all C chunks (kept as the reference)."""
    B, H, N, D = q.shape
    C = ch.n_chunks
    if cand is None:
        cand = moc.candidate_mask(ch, causal)
    desc = moc.chunk_means(k, ch)
    scores = torch.matmul(q.float(), desc.transpose(-1, -2)).masked_fill(~cand, float("-inf"))
    order = torch.sort(scores, dim=-1, descending=True, stable=True).indices
    kk = min(top_k, C)
    order = order[..., :kk]
    valid = torch.arange(kk)[None, :] < cand.sum(-1)[:, None]
    routed = torch.where(valid, order, torch.full_like(order, -1))
    if kk < top_k:
        routed = torch.nn.functional.pad(routed, (0, top_k - kk), value=-1)
    return routed


# (frames per shot, text_len, grid, chunk_frames)
ROUTE_LAYOUTS = [((3, 2, 4), 3, 2, 2), ((4, 3, 5, 2), 2, 2, 1), ((1, 6), 2, 3, 1), ((2,), 2, 2, 1)]


@pytest.mark.parametrize("values", ["normal", "ints", "coarse", "zeros"])
@pytest.mark.parametrize("causal", [True, False])
def test_route_topk_is_bit_identical_to_the_stable_sort(values, causal):
    """Same ids, same order, same -1 padding: random layouts, text queries, queries with fewer
    candidates than top_k (or none), -inf non-candidates and many exact ties (integer-valued
    q and k, so scores tie; 'coarse' keys make whole chunk means equal; 'zeros' ties all)."""
    g = torch.Generator().manual_seed(11 + causal)
    for n, (frames, L, G, cf) in enumerate(ROUTE_LAYOUTS):
        ch = moc.Chunks.from_layout(make_layout(frames, L, G, cf))
        N, C = ch.n_tokens, ch.n_chunks
        B, H, D = 2, 3, 4
        if values == "normal":
            q, k = torch.randn(B, H, N, D, generator=g), torch.randn(B, H, N, D, generator=g)
        elif values == "ints":
            q = torch.randint(-2, 3, (B, H, N, D), generator=g).float()
            k = torch.randint(-1, 2, (B, H, N, D), generator=g).float()
        elif values == "coarse":
            q = torch.randint(-2, 3, (B, H, N, D), generator=g).float()
            k = torch.randint(-1, 2, (B, H, 1, D), generator=g).float().expand(B, H, N, D).clone()
            k[:, :, : N // 2] *= 2.0  # two distinct levels of means
        else:
            q, k = -torch.rand(B, H, N, D, generator=g), torch.zeros(B, H, N, D)  # scores +-0.0
        for top_k in (0, 1, 2, 3, 5, C + 2):
            got = moc.route(q, k, ch, top_k, causal)
            ref = _route_sort_ref(q, k, ch, top_k, causal)
            assert got.dtype == ref.dtype == torch.long and got.shape == (B, H, N, top_k)
            assert torch.equal(got, ref), f"layout {n}, top_k {top_k}"


def test_route_keys_order_like_the_stable_sort():
    """The int64 keys sort exactly like torch.sort(descending, stable) over the masked scores,
    the whole permutation, with +-0.0, +-inf, NaN of either sign, subnormals and ties."""
    special = np.array(
        [
            0x00000000,
            0x80000000,
            0x7F800000,
            0xFF800000,
            0x7FC00000,
            0xFFC00000,
            0x7F800001,
            0x00000001,
            0x80000001,
            0x3F800000,
            0xBF800000,
            0x7F7FFFFF,
            0xFF7FFFFF,
        ],
        dtype=np.uint32,
    ).view(np.float32)
    g = np.random.default_rng(3)
    C = 40
    pool = np.concatenate([special, np.array([0.5, -0.5, 2.0, -3.0], np.float32)])
    scores = torch.from_numpy(g.choice(pool, size=(3, 2, 50, C)).astype(np.float32))
    cand = torch.from_numpy(g.random((50, C)) < 0.7)
    cand[0] = False  # a query with no candidate
    ref = torch.sort(scores.masked_fill(~cand, float("-inf")), dim=-1, descending=True, stable=True).indices
    keys = moc._route_keys(scores.clone(), cand)
    assert torch.equal(torch.topk(keys, C, dim=-1, sorted=True).indices, ref)
    srt = keys.sort(-1).values
    assert (srt[..., :-1] != srt[..., 1:]).all(), "keys are unique per row (the index breaks ties)"
    with pytest.raises(ValueError, match="65536"):
        moc._route_keys(torch.zeros(1, 1, 1, 65537), torch.ones(1, 65537, dtype=torch.bool))


# ---- drop-off / drop-in -------------------------------------------------------------------
def _drop_off_in_ref(table, cand, top_k, p_max, lam, generator=None):
    """The former drop_off_in (full double argsorts over C): the distribution to match."""
    B, H, N, C = table.shape
    rand = lambda *s: torch.rand(*s, generator=generator)
    if p_max > 0 and top_k > 0:
        n_drop = torch.floor(rand(B, H, N) * p_max * top_k)
        r = torch.where(table, rand(B, H, N, C), torch.full((), 2.0))
        rank = r.argsort(-1).argsort(-1)
        table = table & ~(rank < n_drop[..., None])
    if lam > 0:
        n_in = torch.poisson(torch.full((B, H, N), float(lam)), generator=generator)
        eligible = cand[None, None] & ~table
        r = torch.where(eligible, rand(B, H, N, C), torch.full((), -1.0))
        rank = r.argsort(-1, descending=True).argsort(-1)
        table = table | (eligible & (rank < n_in[..., None]))
    return table


def _drop_case(top_k, reps=1, seed=7):
    lay = make_layout((3, 3, 3), 2, 2, 1)
    ch = moc.Chunks.from_layout(lay)
    g = torch.Generator().manual_seed(seed)
    qt, kt = torch.randn(2, 2, lay.n_tokens, 8, generator=g), torch.randn(2, 2, lay.n_tokens, 8, generator=g)
    cand = moc.candidate_mask(ch, True)
    routed = moc.route(qt, kt, ch, top_k, True, cand=cand)  # [2, 2, N, K]
    routed = routed.repeat(reps, 1, 1, 1)  # [2 reps, 2, N, K] same rows
    return ch, cand, routed, moc.routed_table(routed, ch.n_chunks)


def test_drop_off_and_drop_in():
    ch, cand, routed, table = _drop_case(2)
    assert torch.equal(moc.drop_off_in(routed, cand, 0.0, 0.0), table)
    g = torch.Generator().manual_seed(0)
    off = moc.drop_off_in(routed, cand, 1.0, 0.0, g)
    assert not (off & ~table).any() and off.sum() < table.sum()
    assert ((table.sum(-1) - off.sum(-1)) <= 1).all(), "drops at most floor(U * p_max * k) < k"
    on = moc.drop_off_in(routed, cand, 0.0, 3.0, g)
    assert not (table & ~on).any() and on.sum() > table.sum()
    assert not (on & ~table & ~cand).any(), "drop-in adds candidates only"
    both = moc.drop_off_in(routed, cand, 0.9, 2.0, g)
    assert not (both & ~cand[None, None]).any(), "never a mandatory or non-candidate chunk"
    g1, g2 = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    assert torch.equal(moc.drop_off_in(routed, cand, 0.5, 1.0, g1), moc.drop_off_in(routed, cand, 0.5, 1.0, g2))


def test_drop_off_statistics():
    """E[#dropped] = E[min(floor(U p K), v)] per query (v routed), the same chance for each routed
    chunk, and the same per-(query, chunk) marginals as the former argsort implementation."""
    K, p, reps = 4, 0.75, 1500
    ch, cand, routed, table = _drop_case(K, reps)
    g = torch.Generator().manual_seed(1)
    new = moc.drop_off_in(routed, cand, p, 0.0, g)
    old = _drop_off_in_ref(table, cand, K, p, 0.0, g)
    assert not (new & ~table).any()
    v = table.sum(-1)  # [B, H, N] routed count
    expect = sum(max(0.0, 1 - j / (p * K)) * (v >= j).float() for j in range(1, K + 1))
    dropped = (table.sum(-1) - new.sum(-1)).float()
    for vv in v.unique().tolist():
        sel = v == vv
        sd = float(dropped[sel].std()) / math.sqrt(int(sel.sum())) + 1e-9
        assert abs(float(dropped[sel].mean() - expect[sel].mean())) < 5 * sd + 1e-9, f"v={vv}"
    keep_new = new.float().view(reps, -1).mean(0)  # marginals over the copies
    keep_old = old.float().view(reps, -1).mean(0)
    assert (keep_new - keep_old).abs().max() < 0.08
    copies = lambda x: x.view(reps, -1, *x.shape[1:])  # [reps, 2, H, N, ...]
    chance = copies(table.float() - new.float()).mean(0)  # [2, H, N, C] drop chance
    base = copies(table)[0]
    per_row = copies(expect / v.clamp(min=1))[0]  # [2, H, N] E[dropped] / v
    assert ((chance - per_row[..., None]).abs()[base] < 0.08).all(), "uniform over the routed slots"


def test_drop_in_statistics():
    """Drop-in adds min(Poisson(lam), e) of the e eligible chunks, each equally likely, only
    eligible ones; marginals match the former implementation."""
    K, lam, reps = 2, 1.5, 1500
    ch, cand, routed, table = _drop_case(K, reps)
    g = torch.Generator().manual_seed(2)
    new = moc.drop_off_in(routed, cand, 0.0, lam, g)
    old = _drop_off_in_ref(table, cand, K, 0.0, lam, g)
    eligible = cand[None, None] & ~table
    assert not (table & ~new).any() and not (new & ~table & ~eligible).any()
    e = eligible.sum(-1)  # [B, H, N]
    pmf = [math.exp(-lam) * lam**n / math.factorial(n) for n in range(40)]
    added = (new.sum(-1) - table.sum(-1)).float()
    for ee in e.unique().tolist():
        sel = e == ee
        expect = sum(min(n, ee) * pn for n, pn in enumerate(pmf))
        sd = float(added[sel].std()) / math.sqrt(int(sel.sum())) + 1e-9
        assert abs(float(added[sel].mean()) - expect) < 5 * sd + 1e-9, f"e={ee}"
        if ee:
            chance = (new & eligible)[sel].float().sum() / (int(sel.sum()) * ee)
            assert abs(float(chance) - expect / ee) < 0.03
    add_new = (new & eligible).float().view(reps, -1).mean(0)
    add_old = (old & eligible).float().view(reps, -1).mean(0)
    assert (add_new - add_old).abs().max() < 0.08
    copies = lambda x: x.view(reps, -1, *x.shape[1:])  # [reps, 2, H, N, ...]
    per_chunk = copies((new & eligible).float()).mean(0)  # [2, H, N, C]
    e0 = copies(e)[0]
    for ee in (1, 4):  # each eligible chunk alike
        sel = (e0 == ee)[..., None] & copies(eligible)[0]
        want = sum(min(n, ee) * pn for n, pn in enumerate(pmf)) / ee
        assert (per_chunk[sel] - want).abs().max() < 0.08


def test_drop_in_cap():
    """The cap on drop-in counts truncates a Poisson tail below 1e-6 and never exceeds C."""

    def tail(lam, n):
        return sum(math.exp(i * math.log(lam) - lam - math.lgamma(i + 1)) for i in range(n + 1, n + 400))

    for lam in (0.1, 0.5, 1.0, 1.26, 2.0, 4.0, 10.0, 50.0):
        cap = moc.drop_in_cap(lam, 10**6)
        assert cap >= 8 and tail(lam, cap) < 1e-6, lam
        assert moc.drop_in_cap(lam, 5) == 5
    assert moc.drop_in_cap(0.5, 37) == 8
    ch, cand, routed, table = _drop_case(1)
    full = moc.drop_off_in(routed, cand, 0.0, 500.0, torch.Generator().manual_seed(0))
    assert torch.equal(full, table | cand[None, None]), "a huge lam adds every eligible chunk"


def test_exchange_file_roundtrip(tmp_path):
    from train.routing_ref import run_exchange
    from train.safetensors_io import load, save

    lay, q, k, v, cols = case(seed=8)
    names = ("chunk_start", "chunk_end", "chunk_shot", "chunk_kind")
    save(
        str(tmp_path / "in.safetensors"),
        {"q": q, "k": k, "v": v, **{n: np.asarray(c, np.int32) for n, c in zip(names, cols)}},
        {"top_k": "2", "causal": "true", "mode": "moc"},
    )
    t, _ = load(str(tmp_path / "in.safetensors"))
    assert np.array_equal(t["q"], q) and t["chunk_kind"].dtype == np.int32
    run_exchange(str(tmp_path / "in.safetensors"), str(tmp_path / "out.safetensors"))
    out, meta = load(str(tmp_path / "out.safetensors"))
    ref_out, ref_routed, sp = moc_attention(q, k, v, *cols, top_k=2)
    assert np.array_equal(out["routed"], ref_routed) and np.array_equal(out["out"], ref_out)
    assert float(meta["sparsity"]) == sp
    save(
        str(tmp_path / "ct.safetensors"),
        {"q": q, "k": k, "v": v, **{n: np.asarray(c, np.int32) for n, c in zip(names, cols)}},
        {"top_k": "2", "causal": "true", "mode": "moc", "causal_text": "true"},
    )
    run_exchange(str(tmp_path / "ct.safetensors"), str(tmp_path / "ct-out.safetensors"))
    ct_out, _ = load(str(tmp_path / "ct-out.safetensors"))
    assert np.array_equal(ct_out["out"], moc_attention(q, k, v, *cols, top_k=2, causal_text=True)[0])
    assert not np.array_equal(ct_out["out"], out["out"])
    save(
        str(tmp_path / "ct-bad.safetensors"),
        {"q": q, "k": k, "v": v, **{n: np.asarray(c, np.int32) for n, c in zip(names, cols)}},
        {"top_k": "2", "causal_text": "yes"},
    )
    with pytest.raises(ValueError, match="causal_text 'yes'"):
        run_exchange(str(tmp_path / "ct-bad.safetensors"), str(tmp_path / "o.safetensors"))
    save(str(tmp_path / "bad.safetensors"), {"q": q, "k": k}, {"top_k": "2"})
    with pytest.raises(ValueError, match="'v'"):
        run_exchange(str(tmp_path / "bad.safetensors"), str(tmp_path / "o.safetensors"))


# ---- the PyTorch reference against the TypeScript CPU reference (`moc attention --cpu`) -------
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CLI = os.path.join(ROOT, "bin", "moc.mjs")
NODE = shutil.which("node")
TS_MISSING = (
    "node is not installed"
    if NODE is None
    else "node_modules is missing (run `npm ci`)"
    if not os.path.isdir(os.path.join(ROOT, "node_modules", "tsx"))
    else None
)

# (frames per shot, text_len, grid, chunk_frames, H, D, top_k, causal, mode, seed, ties[, causal_text])
TS_CASES = [
    ((3, 2, 4), 3, 2, 2, 2, 8, 2, True, "moc", 0, False),
    ((4, 3, 5, 2), 4, 2, 1, 3, 16, 3, True, "moc", 1, False),
    ((2, 2, 3), 2, 3, 1, 2, 6, 4, False, "moc", 2, False),
    ((2, 3), 3, 2, 1, 1, 8, 8, True, "moc", 3, False),  # top_k beyond the candidates (= the 8 chunks)
    ((3, 3, 3), 2, 2, 1, 2, 8, 0, True, "moc", 4, False),  # top_k 0: mandatory links only
    ((2, 2, 2), 3, 2, 1, 2, 8, 2, True, "moc", 5, True),  # every score ties
    ((3, 2, 4), 3, 2, 2, 2, 8, 2, True, "dense", 6, False),
    ((3, 2, 4), 3, 2, 2, 2, 8, 2, True, "moc", 7, False, True),  # MOC.md §3b
    ((4, 3, 5, 2), 4, 2, 1, 3, 16, 3, True, "moc", 8, False, True),
]


@pytest.mark.skipif(TS_MISSING is not None, reason=f"TypeScript reference unavailable: {TS_MISSING}")
def test_matches_typescript_cpu_reference(tmp_path):
    from train.safetensors_io import load, save

    names = ("chunk_start", "chunk_end", "chunk_shot", "chunk_kind")
    cases, procs = [], []
    for n, (frames, L, G, cf, H, D, top_k, causal, mode, seed, ties, *ct) in enumerate(TS_CASES):
        causal_text = bool(ct and ct[0])
        lay, q, k, v, cols = case(frames, L, G, cf, H, D, seed)
        if ties:
            k[:] = 1.0
        src, dst = str(tmp_path / f"in{n}.safetensors"), str(tmp_path / f"out{n}.safetensors")
        save(
            src,
            {"q": q, "k": k, "v": v, **{nm: np.asarray(c, np.int32) for nm, c in zip(names, cols)}},
            {
                "top_k": str(top_k),
                "causal": "true" if causal else "false",
                "mode": mode,
                **({"causal_text": "true"} if causal_text else {}),
            },
        )
        cases.append((q, k, v, cols, top_k, causal, mode, causal_text, dst))
        procs.append(
            subprocess.Popen(
                [NODE, CLI, "attention", "--in", src, "--out", dst, "--cpu"],
                cwd=ROOT,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    for n, (proc, (q, k, v, cols, top_k, causal, mode, causal_text, dst)) in enumerate(zip(procs, cases)):
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, f"case {n}: moc attention failed: {err.strip()}"
        ts, meta = load(dst)
        out, routed, sp = moc_attention(q, k, v, *cols, top_k=top_k, causal=causal, mode=mode, causal_text=causal_text)
        assert ts["routed"].dtype == np.int32 and ts["routed"].shape == routed.shape, f"case {n}"
        assert np.array_equal(ts["routed"], routed), f"case {n}: routed indices differ"
        np.testing.assert_allclose(ts["out"], out, atol=2e-5, rtol=1e-4, err_msg=f"case {n}")
        assert float(meta["sparsity"]) == pytest.approx(sp, abs=1e-9), f"case {n}"


# ---- routing view (MOC.md §3b): q_route / k_route -------------------------------------------
def _view_case(seed=21):
    lay, q, k, v, cols = case(seed=seed)
    g = np.random.default_rng(seed + 1000)
    qr, kr = (g.standard_normal(q.shape).astype(np.float32) for _ in range(2))
    return lay, q, k, v, qr, kr, cols


def test_route_view_routes_by_the_view_and_attends_with_qkv():
    lay, q, k, v, qr, kr, cols = _view_case()
    out, routed, sp = moc_attention(q, k, v, *cols, top_k=2, q_route=qr, k_route=kr)
    assert np.array_equal(routed, route_naive(qr, kr, *cols, top_k=2))
    assert not np.array_equal(routed, route_naive(q, k, *cols, top_k=2)), "the view must matter here"
    np.testing.assert_allclose(out, attention_naive(q, k, v, *cols, routed=routed), atol=2e-5, rtol=1e-4)
    plain = moc_attention(q, k, v, *cols, top_k=2)
    assert np.array_equal(moc_attention(q, k, v, *cols, top_k=2, q_route=q, k_route=k)[1], plain[1])
    with pytest.raises(ValueError, match="both or neither"):
        moc_attention(q, k, v, *cols, top_k=2, q_route=qr)
    with pytest.raises(ValueError, match="k_route must be"):
        moc_attention(q, k, v, *cols, top_k=2, q_route=qr, k_route=kr[:, :-1])


@pytest.mark.skipif(TS_MISSING is not None, reason=f"TypeScript reference unavailable: {TS_MISSING}")
def test_route_view_matches_typescript_cpu_reference(tmp_path):
    from train.routing_ref import run_exchange
    from train.safetensors_io import load, save

    lay, q, k, v, qr, kr, cols = _view_case(seed=5)
    names = ("chunk_start", "chunk_end", "chunk_shot", "chunk_kind")
    src = str(tmp_path / "in.safetensors")
    save(
        src,
        {
            "q": q,
            "k": k,
            "v": v,
            "q_route": qr,
            "k_route": kr,
            **{nm: np.asarray(c, np.int32) for nm, c in zip(names, cols)},
        },
        {"top_k": "3", "causal": "true", "mode": "moc"},
    )
    run_exchange(src, str(tmp_path / "py.safetensors"))
    proc = subprocess.run(
        [NODE, CLI, "attention", "--in", src, "--out", str(tmp_path / "ts.safetensors"), "--cpu"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    py, _ = load(str(tmp_path / "py.safetensors"))
    ts, _ = load(str(tmp_path / "ts.safetensors"))
    assert np.array_equal(ts["routed"], py["routed"]), "routed indices differ"
    assert not np.array_equal(py["routed"], route(q, k, *cols, top_k=3)), "the view must matter here"
    np.testing.assert_allclose(ts["out"], py["out"], atol=2e-5, rtol=1e-4)
