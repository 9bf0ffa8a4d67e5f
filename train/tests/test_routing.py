import os
import shutil
import subprocess

import numpy as np
import pytest
import torch

from train import moc
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


@pytest.mark.parametrize("mode", ["moc", "dense", "shot"])
def test_attention_matches_naive(mode):
    lay, q, k, v, cols = case(seed=3)
    out, routed, sp = moc_attention(q, k, v, *cols, top_k=2, causal=True, mode=mode)
    ref = attention_naive(q, k, v, *cols, routed=routed, mode=mode)
    np.testing.assert_allclose(out, ref, atol=2e-5, rtol=1e-4)
    if mode == "dense":
        assert sp == 0.0 and (routed == -1).all()
    else:
        assert 0.0 < sp < 1.0


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
            assert len(used) == min(K, n_cand) and (r[len(used):] == -1).all()
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
    last = lay.n_tokens - 1                       # a token of the last frame of shot 2
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
    qi = torch.from_numpy(q[:, lay.stream_index])[None]       # internal order
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
            chunks = {c for c in range(len(start)) if kind[c] == 0 or shot[c] == s} | set(routed[h, i][routed[h, i] >= 0].tolist())
            visited += sum(end[c] - start[c] for c in chunks)
    assert sp == pytest.approx(1 - visited / (H * N * N))


def test_drop_off_and_drop_in():
    lay, q, k, v, cols = case(frames=(3, 3, 3), cf=1, seed=7)
    ch = moc.Chunks.from_layout(lay)
    qt, kt = torch.randn(2, 2, lay.n_tokens, 8), torch.randn(2, 2, lay.n_tokens, 8)
    cand = moc.candidate_mask(ch, True)
    routed = moc.route(qt, kt, ch, 2, True, cand=cand)
    table = moc.routed_table(routed, ch.n_chunks)
    assert torch.equal(moc.drop_off_in(table, cand, 2, 0.0, 0.0), table)
    g = torch.Generator().manual_seed(0)
    off = moc.drop_off_in(table, cand, 2, 1.0, 0.0, g)
    assert not (off & ~table).any() and off.sum() < table.sum()
    assert ((table.sum(-1) - off.sum(-1)) <= 1).all(), "drops at most floor(U * p_max * k) < k"
    on = moc.drop_off_in(table, cand, 2, 0.0, 3.0, g)
    assert not (table & ~on).any() and on.sum() > table.sum()
    assert not (on & ~table & ~cand).any(), "drop-in adds candidates only"
    g1, g2 = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    assert torch.equal(moc.drop_off_in(table, cand, 2, 0.5, 1.0, g1), moc.drop_off_in(table, cand, 2, 0.5, 1.0, g2))


def test_exchange_file_roundtrip(tmp_path):
    from train.routing_ref import run_exchange
    from train.safetensors_io import load, save

    lay, q, k, v, cols = case(seed=8)
    names = ("chunk_start", "chunk_end", "chunk_shot", "chunk_kind")
    save(str(tmp_path / "in.safetensors"), {"q": q, "k": k, "v": v, **{n: np.asarray(c, np.int32) for n, c in zip(names, cols)}},
         {"top_k": "2", "causal": "true", "mode": "moc"})
    t, _ = load(str(tmp_path / "in.safetensors"))
    assert np.array_equal(t["q"], q) and t["chunk_kind"].dtype == np.int32
    run_exchange(str(tmp_path / "in.safetensors"), str(tmp_path / "out.safetensors"))
    out, meta = load(str(tmp_path / "out.safetensors"))
    ref_out, ref_routed, sp = moc_attention(q, k, v, *cols, top_k=2)
    assert np.array_equal(out["routed"], ref_routed) and np.array_equal(out["out"], ref_out)
    assert float(meta["sparsity"]) == sp
    save(str(tmp_path / "bad.safetensors"), {"q": q, "k": k}, {"top_k": "2"})
    with pytest.raises(ValueError, match="'v'"):
        run_exchange(str(tmp_path / "bad.safetensors"), str(tmp_path / "o.safetensors"))


# ---- the PyTorch reference against the TypeScript CPU reference (`moc attention --cpu`) -------
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CLI = os.path.join(ROOT, "bin", "moc.mjs")
NODE = shutil.which("node")
TS_MISSING = ("node is not installed" if NODE is None else
              "node_modules is missing (run `npm ci`)" if not os.path.isdir(os.path.join(ROOT, "node_modules", "tsx"))
              else None)

# (frames per shot, text_len, grid, chunk_frames, H, D, top_k, causal, mode, seed, ties)
TS_CASES = [
    ((3, 2, 4), 3, 2, 2, 2, 8, 2, True, "moc", 0, False),
    ((4, 3, 5, 2), 4, 2, 1, 3, 16, 3, True, "moc", 1, False),
    ((2, 2, 3), 2, 3, 1, 2, 6, 4, False, "moc", 2, False),
    ((2, 3), 3, 2, 1, 1, 8, 9, True, "moc", 3, False),        # top_k beyond the candidates
    ((3, 3, 3), 2, 2, 1, 2, 8, 0, True, "moc", 4, False),     # top_k 0: mandatory links only
    ((2, 2, 2), 3, 2, 1, 2, 8, 2, True, "moc", 5, True),      # every score ties
    ((3, 2, 4), 3, 2, 2, 2, 8, 2, True, "dense", 6, False),
]


@pytest.mark.skipif(TS_MISSING is not None, reason=f"TypeScript reference unavailable: {TS_MISSING}")
def test_matches_typescript_cpu_reference(tmp_path):
    from train.safetensors_io import load, save

    names = ("chunk_start", "chunk_end", "chunk_shot", "chunk_kind")
    cases, procs = [], []
    for n, (frames, L, G, cf, H, D, top_k, causal, mode, seed, ties) in enumerate(TS_CASES):
        lay, q, k, v, cols = case(frames, L, G, cf, H, D, seed)
        if ties:
            k[:] = 1.0
        src, dst = str(tmp_path / f"in{n}.safetensors"), str(tmp_path / f"out{n}.safetensors")
        save(src, {"q": q, "k": k, "v": v, **{nm: np.asarray(c, np.int32) for nm, c in zip(names, cols)}},
             {"top_k": str(top_k), "causal": "true" if causal else "false", "mode": mode})
        cases.append((q, k, v, cols, top_k, causal, mode, dst))
        procs.append(subprocess.Popen([NODE, CLI, "attention", "--in", src, "--out", dst, "--cpu"], cwd=ROOT,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    for n, (proc, (q, k, v, cols, top_k, causal, mode, dst)) in enumerate(zip(procs, cases)):
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, f"case {n}: moc attention failed: {err.strip()}"
        ts, meta = load(dst)
        out, routed, sp = moc_attention(q, k, v, *cols, top_k=top_k, causal=causal, mode=mode)
        assert ts["routed"].dtype == np.int32 and ts["routed"].shape == routed.shape, f"case {n}"
        assert np.array_equal(ts["routed"], routed), f"case {n}: routed indices differ"
        np.testing.assert_allclose(ts["out"], out, atol=2e-5, rtol=1e-4, err_msg=f"case {n}")
        assert float(meta["sparsity"]) == pytest.approx(sp, abs=1e-9), f"case {n}"
