import pytest
import torch

from train import moc
from train.model import MoCDiT, apply_rope, make_config, rope_tables
from train.sample import sample

torch.set_num_threads(2)


def expected_weights(cfg):
    d, D, P, h = cfg.dim, cfg.head_dim, cfg.patch_dim, cfg.mlp_hidden
    w = {
        "text_embed.weight": (cfg.vocab_size, d),
        "text_pos.weight": (cfg.text_len, d),
        "video_embed.weight": (d, P),
        "video_embed.bias": (d,),
        "t_embed.fc1.weight": (d, cfg.t_freq_dim),
        "t_embed.fc1.bias": (d,),
        "t_embed.fc2.weight": (d, d),
        "t_embed.fc2.bias": (d,),
        "final.mod.weight": (2 * d, d),
        "final.mod.bias": (2 * d,),
        "final.proj.weight": (P, d),
        "final.proj.bias": (P,),
    }
    for i in range(cfg.depth):
        last = i == cfg.depth - 1
        b = f"blocks.{i}."
        w[b + "mod_text.weight"], w[b + "mod_text.bias"] = ((2 if last else 6) * d, d), ((2 if last else 6) * d,)
        w[b + "mod_video.weight"], w[b + "mod_video.bias"] = (6 * d, d), (6 * d,)
        for s in ("text", "video"):
            w[b + f"attn.qkv_{s}.weight"], w[b + f"attn.qkv_{s}.bias"] = (3 * d, d), (3 * d,)
            w[b + f"attn.q_norm_{s}.weight"] = w[b + f"attn.k_norm_{s}.weight"] = (D,)
            if s == "video" or not last:
                w[b + f"attn.out_{s}.weight"], w[b + f"attn.out_{s}.bias"] = (d, d), (d,)
                w[b + f"mlp_{s}.fc1.weight"], w[b + f"mlp_{s}.fc1.bias"] = (h, d), (h,)
                w[b + f"mlp_{s}.fc2.weight"], w[b + f"mlp_{s}.fc2.bias"] = (d, h), (d,)
    return w


@pytest.mark.parametrize("name", ["tiny", "mini", "base", "small"])
def test_weight_names_are_the_documented_ones(name):
    cfg = make_config(name)
    got = {k: tuple(v.shape) for k, v in MoCDiT(cfg).state_dict().items()}
    assert got == expected_weights(cfg)
    fp16_bytes = sum(v.numel() for v in MoCDiT(cfg).state_dict().values()) * 2
    assert fp16_bytes <= {"mini": 1, "tiny": 1}.get(name, 16) * 2**20
    if name != "tiny":  # shipped models: the network can reach every value of a patch (model.CONFIGS)
        assert cfg.dim >= cfg.patch_dim
    if name == "base":
        assert cfg.image_size == 64 and cfg.grid**2 == 64


def randomised(cfg, seed=0):
    torch.manual_seed(seed)
    m = MoCDiT(cfg)
    with torch.no_grad():
        for n, p in m.named_parameters():
            if "norm" not in n:
                p.normal_(0, 0.15)
    return m.eval()


def inputs(cfg, B=2, S=3, F=2, seed=1):
    g = torch.Generator().manual_seed(seed)
    s = cfg.image_size
    return (
        torch.randn(B, S * F, 3, s, s, generator=g),
        torch.rand(B, S, generator=g),
        torch.randint(2, cfg.vocab_size, (B, S + 1, cfg.text_len), generator=g),
    )


def test_zero_init_and_modes():
    cfg = make_config("tiny")
    m = MoCDiT(cfg)
    v, t, txt = inputs(cfg)
    for mode in ("dense", "moc", "shot"):
        out = m(v, t, txt, mode=mode)
        assert out.shape == v.shape and out.abs().max() == 0  # adaLN-zero + zero final proj


def test_patchify_roundtrip():
    m = MoCDiT(make_config("tiny"))
    x = torch.randn(2, 5, 3, 16, 16)
    assert torch.equal(m.unpatchify(m.patchify(x), 5), x)
    # patch (row 1, col 2) of frame 0 holds pixels [4:8, 8:12] in (c, py, px) order
    assert torch.equal(m.patchify(x)[0, 1 * 4 + 2], x[0, 0, :, 4:8, 8:12].reshape(-1))


def test_rope_is_relative():
    pos = torch.tensor([[3.0, 1.0, 2.0], [5.0, 4.0, 0.0], [13.0, 1.0, 2.0], [15.0, 4.0, 0.0]])
    cos, sin = rope_tables(pos, 12, 100.0)
    q, k = torch.randn(1, 1, 1, 12), torch.randn(1, 1, 1, 12)
    rq = apply_rope(q.expand(1, 1, 4, 12), cos, sin)[0, 0]
    rk = apply_rope(k.expand(1, 1, 4, 12), cos, sin)[0, 0]
    assert torch.allclose(rq[0] @ rk[1], rq[2] @ rk[3], atol=1e-5)  # same offset, shifted in t
    assert not torch.allclose(rq[0] @ rk[1], rq[0] @ rk[3], atol=1e-3)


def _shot_slice(S, F, s):
    return slice(s * F, (s + 1) * F)


def test_shot_mode_is_independent_and_timesteps_are_per_shot():
    cfg = make_config("tiny")
    m = randomised(cfg)
    v, t, txt = inputs(cfg)
    base = m(v, t, txt, mode="shot")
    v2, t2, txt2 = v.clone(), t.clone(), txt.clone()
    v2[:, _shot_slice(3, 2, 2)] += 1.0
    t2[:, 2] = 0.9 if t[0, 2] < 0.5 else 0.1
    txt2[:, 3] = 3  # caption of shot 2
    other = m(v2, t2, txt2, mode="shot")
    assert torch.allclose(base[:, :4], other[:, :4], atol=1e-5), "shots 0 and 1 ignore shot 2"
    assert not torch.allclose(base[:, 4:], other[:, 4:], atol=1e-3)
    t3 = t.clone()
    t3[:, 1] = 1 - t[:, 1]
    dense_a, dense_b = m(v, t, txt, mode="dense"), m(v, t3, txt, mode="dense")
    assert not torch.allclose(dense_a[:, :2], dense_b[:, :2], atol=1e-4), "dense: shot 1 is seen by shot 0"
    shot_b = m(v, t3, txt, mode="shot")
    assert torch.allclose(base[:, :2], shot_b[:, :2], atol=1e-5)


def test_moc_one_layer_is_causal_across_shots():
    """One block: a video query sees text embeddings, its shot and routed EARLIER chunks only."""
    cfg = make_config("tiny", depth=1)
    m = randomised(cfg, seed=2)
    v, t, txt = inputs(cfg, S=3, F=2)
    a = m(v, t, txt, mode="moc", chunk_frames=1, top_k=2)
    v2 = v.clone()
    v2[:, 4:] += 2.0  # change shot 2
    b = m(v2, t, txt, mode="moc", chunk_frames=1, top_k=2)
    assert torch.allclose(a[:, :4], b[:, :4], atol=1e-5)
    d1, d2 = m(v, t, txt, mode="dense"), m(v2, t, txt, mode="dense")
    assert not torch.allclose(d1[:, :4], d2[:, :4], atol=1e-4)


def test_causal_text_makes_every_layer_causal_across_shots():
    """MOC.md §3b: with causal_text and causal routing, no output of shots 0 and 1 changes when
    shot 2's frames, timestep or caption change, through every layer. Without causal_text the
    captions carry shot 2 back from the second layer on (the same check fails)."""
    cfg = make_config("tiny")  # depth 2
    m = randomised(cfg, seed=3)
    v, t, txt = inputs(cfg, S=3, F=2)
    v2, t2, txt2 = v.clone(), t.clone(), txt.clone()
    v2[:, 4:] += 2.0
    t2[:, 2] = 0.9 if t[0, 2] < 0.5 else 0.1
    txt2[:, 3] = 3  # caption of shot 2
    for causal_text in (True, False):
        with torch.no_grad():
            a = m(v, t, txt, mode="moc", top_k=2, causal_text=causal_text)
            b = m(v2, t2, txt2, mode="moc", top_k=2, causal_text=causal_text)
        assert not torch.allclose(a[:, 4:], b[:, 4:], atol=1e-3)
        assert torch.allclose(a[:, :4], b[:, :4], atol=1e-5) == causal_text, f"causal_text={causal_text}"
    assert MoCDiT(make_config("tiny", causal_text=True)).cfg.to_dict()["causal_text"] is True


def test_trace_and_stats():
    cfg = make_config("tiny")
    m = randomised(cfg)
    v, t, txt = inputs(cfg)
    trace, stats = {}, []
    m(v, t, txt, mode="moc", chunk_frames=1, top_k=2, trace=trace, stats=stats)
    lay = m.layout((2, 2, 2), 1)
    r = trace["blocks.1.routed"]
    assert r.shape == (2, cfg.heads, lay.n_tokens, 2)
    assert (r[:, :, : lay.n_text] == -1).all()
    assert len(stats) == cfg.depth and all(0 < s < 1 for s in stats)
    assert trace["blocks.0.attn.q"].shape == (2, cfg.heads, lay.n_tokens, cfg.head_dim)


def test_tiled_checkpointed_attention_matches_and_backprops():
    cfg = make_config("tiny")
    m = randomised(cfg)
    v, t, txt = inputs(cfg)
    a = m(v, t, txt, mode="moc", top_k=2, q_tile=7, checkpoint=True, backend="plain")
    b = m(v, t, txt, mode="moc", top_k=2, backend="plain")
    assert torch.allclose(a, b, atol=1e-5)
    a.square().mean().backward()
    assert all(p.grad is not None for p in m.parameters())


@pytest.mark.skipif(not moc.HAS_SDPA, reason="PyTorch without scaled_dot_product_attention")
def test_sdpa_matches_plain():
    cfg = make_config("tiny")
    m = randomised(cfg)
    v, t, txt = inputs(cfg)
    for mode in ("dense", "moc", "shot"):
        a = m(v, t, txt, mode=mode, top_k=2, backend="plain")
        b = m(v, t, txt, mode=mode, top_k=2, backend="sdpa")
        assert torch.allclose(a, b, atol=1e-4)


def _has_flex():
    try:
        from torch.nn.attention.flex_attention import flex_attention  # noqa: F401

        return torch.cuda.is_available()
    except Exception:
        return False


@pytest.mark.skipif(not _has_flex(), reason="flex_attention needs PyTorch >= 2.5 with CUDA")
def test_flex_matches_plain():
    cfg = make_config("tiny", dim=64, heads=2)
    m = randomised(cfg).cuda()
    v, t, txt = (x.cuda() for x in inputs(cfg, S=4, F=8))
    a = m(v, t, txt, mode="moc", top_k=2, backend="plain")
    b = m(v, t, txt, mode="moc", top_k=2, backend="flex")
    assert torch.allclose(a, b, atol=1e-3)


def test_sampler_keeps_fixed_shots():
    cfg = make_config("tiny")
    m = randomised(cfg)
    v, _, txt = inputs(cfg, B=1)
    keep = v.clamp(-1, 1)
    out = sample(
        m,
        txt,
        (2, 2, 2),
        steps=2,
        guidance=2.0,
        mode="moc",
        top_k=1,
        keep=keep,
        keep_shots=[True, False, False],
        seeds=[1, 2, 3],
    )
    assert out.shape == v.shape and torch.equal(out[:, :2], keep[:, :2])
    again = sample(
        m,
        txt,
        (2, 2, 2),
        steps=2,
        guidance=2.0,
        mode="moc",
        top_k=1,
        keep=keep,
        keep_shots=[True, False, False],
        seeds=[1, 2, 3],
    )
    assert torch.equal(out, again)


def test_additive_bias_equals_the_boolean_mask():
    """The SDPA path feeds mask_bias (0 / -inf from the chunk table); same softmax as the mask."""
    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(2, 3, 5, 8, generator=g) for _ in range(3))
    key_chunk = torch.tensor([0, 0, 1, 2, 2])
    allowed = torch.rand(2, 3, 5, 3, generator=g) < 0.5
    allowed[..., 1] = True  # every query sees a key
    a = moc._attend_plain(q, k, v, allowed[..., key_chunk])
    bias = moc.mask_bias(allowed, key_chunk, q.dtype)
    assert bias.shape == (2, 3, 5, 5) and set(bias.unique().tolist()) == {0.0, float("-inf")}
    assert torch.allclose(a, moc._attend_plain(q, k, v, bias), atol=1e-6)


@pytest.mark.parametrize(
    "frames,cf,runs", [((2, 3), 1, True), ((3, 2, 4), 2, True), ((5,), 3, True), ((3, 2, 4), 2, False)]
)
def test_mask_bias_run_path_is_bit_identical(frames, cf, runs):
    """The model's [text; video] key order is runs per chunk (captions of L tokens, then video
    chunks; a short last chunk per shot adds run-length segments): mask_bias and the boolean
    expansion gather per run and broadcast-copy, exactly equal to the per-token gather. A
    shuffled key order has no usable runs and takes the gather."""
    from train.layout import make_layout

    lay = make_layout(frames, 3, 2, cf)
    ch = moc.Chunks.from_layout(lay)
    key_chunk = (
        ch.token_chunk
        if runs
        else ch.token_chunk[torch.randperm(ch.n_tokens, generator=torch.Generator().manual_seed(0))]
    )
    found = moc.key_runs(key_chunk)
    assert (found is not None) == runs and moc.key_runs(key_chunk) is found  # cached on the tensor
    if runs:
        run_chunk, segs = found
        assert segs[0][:2] == (0, lay.n_text) and segs[0][4] == 3  # all captions: one segment
        assert segs[-1][1] == lay.n_tokens and len(run_chunk) == lay.n_chunks
    g = torch.Generator().manual_seed(1)
    C = ch.n_chunks
    for shape in ((2, 3, 7, C), (1, 1, 5, C)):
        allowed = torch.rand(*shape, generator=g) < 0.5
        ref_bool = allowed[..., key_chunk]
        assert torch.equal(moc.expand_keys(allowed, key_chunk), ref_bool)
        sliced = allowed[:, :, 1:4]  # a query tile, not contiguous
        assert torch.equal(moc.expand_keys(sliced, key_chunk), sliced[..., key_chunk])
        for dtype in (torch.float32, torch.float16, torch.bfloat16):
            ref = torch.zeros(shape, dtype=dtype).masked_fill_(~allowed, float("-inf"))[..., key_chunk]
            got = moc.mask_bias(allowed, key_chunk, dtype)
            assert got.dtype == dtype and got.shape == ref.shape
            assert torch.equal(
                got.view(torch.int16 if dtype != torch.float32 else torch.int32),
                ref.view(torch.int16 if dtype != torch.float32 else torch.int32),
            )


@pytest.mark.parametrize("frames", [(2, 2, 2), (2, 3, 1), (1, 4)])
def test_shot_rows_give_every_video_token_its_shots_row(frames):
    """ShotRows groups video tokens per shot (equal lengths) or per frame (mixed lengths); spread
    back to tokens, the rows must be those of each token's shot in the layout."""
    from train.model import ShotRows

    cfg = make_config("tiny")
    layout = MoCDiT(cfg).layout(frames, 1)
    rows = ShotRows(layout, "cpu")
    S, B, k = len(frames), 2, 5
    m = torch.randn(B, S + 1, k)
    per_group = rows.video(m)  # [B, Gv, 1, k]
    assert per_group.shape == (B, rows.gv, 1, k)
    per_token = per_group.expand(B, rows.gv, layout.n_video // rows.gv, k).reshape(B, layout.n_video, k)
    want = m[:, torch.as_tensor(layout.token_shot[layout.n_text :] + 1)]
    assert torch.equal(per_token, want)


def test_route_views():
    """Each routing view (MOC.md §3b): routing's q, k are the attention's turned back by their own
    time ("spatial") or by their whole 3D position ("unrotated"), routing follows them exactly,
    the attention still uses the rotated q, k, and "rotary" is the model without a view."""
    from train.model import ROUTE_VIEWS
    from train.routing_ref import route

    base = randomised(make_config("tiny"), seed=3)
    v, t, txt = inputs(base.cfg, S=3, F=3)
    lay = base.layout((3, 3, 3), 1)
    pos = torch.as_tensor(lay.pos)
    back = {"spatial": -pos * torch.tensor([1.0, 0.0, 0.0]), "unrotated": -pos}
    outs = {}
    for view in ROUTE_VIEWS:
        m = MoCDiT(make_config("tiny", route_view=view)).eval()
        m.load_state_dict(base.state_dict())
        trace = {}
        with torch.no_grad():
            outs[view] = m(v, t, txt, mode="moc", chunk_frames=1, top_k=2, trace=trace)
        if view == "rotary":
            assert "blocks.0.attn.q_route" not in trace
            continue
        differs = False
        for i in range(m.cfg.depth):
            q, k = trace[f"blocks.{i}.attn.q"], trace[f"blocks.{i}.attn.k"]
            qr, kr = trace[f"blocks.{i}.attn.q_route"], trace[f"blocks.{i}.attn.k_route"]
            cos, sin = rope_tables(back[view], m.cfg.head_dim, m.cfg.rope_theta)
            assert torch.allclose(apply_rope(q, cos, sin), qr, atol=1e-5)
            assert torch.allclose(apply_rope(k, cos, sin), kr, atol=1e-5)
            cols = (lay.chunk_start, lay.chunk_end, lay.chunk_shot, lay.chunk_kind)
            for b in range(q.shape[0]):
                stream = torch.as_tensor(lay.stream_index).argsort()  # internal token of each stream slot
                got = trace[f"blocks.{i}.routed"][b][:, stream].numpy()
                want = route(qr[b][:, stream], kr[b][:, stream], *cols, top_k=2)
                assert (got == want).all(), f"{view}: layer {i} routes by its view"
                differs |= not (want == route(q[b][:, stream], k[b][:, stream], *cols, top_k=2)).all()
        assert differs, f"{view}: the view never changed a routing choice (the test could not fail)"
        assert not torch.allclose(outs[view], outs["rotary"], atol=1e-4)
    dense = {vw: MoCDiT(make_config("tiny", route_view=vw)).eval() for vw in ("rotary", "spatial")}
    for m in dense.values():
        m.load_state_dict(base.state_dict())
    with torch.no_grad():
        assert torch.equal(dense["rotary"](v, t, txt), dense["spatial"](v, t, txt)), "dense ignores the view"
    with pytest.raises(AssertionError, match="route_view"):
        make_config("tiny", route_view="temporal")
