"""GPU tests of the fused FlexAttention path (chapter 3b); every test is skipped without CUDA.

    python -m pytest tests/test_gpu.py -v                                      # on a machine with a CUDA GPU
    MSA_GPU_TEST_OUT=data/gpu_test_last.json python -m pytest tests/test_gpu.py -v   # and store the results

1. `test_varied_lengths_stay_fused`: the table of issue 11. One `MSAttention(512, 8, 256, 64)` in bf16, training mode,
   forward + backward at 30 distinct lengths in the order a variable-length run meets them (65,536 and 262,144 first,
   then 512, 1,000-5,000, 6,000, ..., 10,000, 40,000 and 16 random lengths). With `dynamic=False` the 9th length fell
   back to the unfused N x N path (7 GiB at N = 6,000, out of memory at 40,000); here the extra peak memory must stay
   linear in N (at most 32 KiB per token + 256 MiB) at every length, and torch must hold only a few compiled graphs.
2. `test_fused_matches_float64`: the fused kernel (float32 and bfloat16) against `banded_attention` in float64, values
   and gradients of q, k, v, with ragged N, causal windows, padding in the middle and an all-padding sequence.
3. `test_compressed_matches_float64`: chapter 12b's fused compressed branch against chapter 12 in float64, values and
   gradients, causal with padding in the middle and non-causal with random padding.
4. Chapter 13b: both selected branches (the FlexAttention block mask and the gather + SDPA) against chapter 13 in
   float64, the fused routed layer with each of them against the layer, and the Triton block-score kernel against the
   float64 slab (`test_block_score_kernel_matches_float64`).
5. `test_routed_layer_varied_lengths`: chapter 13b's fused routed layer (causal, rotary positions, the gathered
   selected branch) in training at 14 distinct lengths, 512 to 262,144: extra peak memory at most 64 KiB per token
   + 256 MiB at every one, at most 6 new FlexAttention graphs, and one compiled variant of the Triton score kernel
   for all of them (its length-dependent integers are not specialised).
6. `test_fallback_is_loud`: when the bounded cache is full, a new variant raises `FlexFallbackError`.
Imports only torch, einops and msa_nb (no fastcore or nbdev needed on the GPU machine).
"""
import datetime, json, math, os, random, sys, time
from pathlib import Path
import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from msa_nb.banded import banded_attention
from msa_nb.flex import FlexFallbackError, flex_graph_count, flex_local_attention, local_attention
import msa_nb.flex as flex
from msa_nb.layer import MSAttention
from msa_nb.chunk_memory import compressed_attention
from msa_nb.flex_compressed import flex_compressed_attention
from msa_nb.chunk_memory import n_chunks
from msa_nb.routing import select_chunks, selected_attention
from msa_nb.flex_routed import flex_selected_attention, gather_selected_attention, fused_routed_forward, SELECTED

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason='needs a CUDA GPU')
RESULTS = {}
GIB, KIB = 2**30, 2**10
BYTES_PER_TOKEN, SLACK = 32 * KIB, 256 * 2**20      # the linear bound on extra peak memory (B = 1)


def save():
    "Write what the tests measured so far to $MSA_GPU_TEST_OUT (JSON), if that is set: after every step, so a killed run keeps its rows."
    path = os.environ.get('MSA_GPU_TEST_OUT')
    if not (path and RESULTS and torch.cuda.is_available()): return
    meta = dict(gpu=torch.cuda.get_device_name(), torch=torch.__version__, cuda=torch.version.cuda,
                date=datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ'),
                command='MSA_GPU_TEST_OUT=... python -m pytest tests/test_gpu.py -v',
                bound=f'extra peak <= {BYTES_PER_TOKEN // KIB} KiB x N + {SLACK // 2**20} MiB')
    Path(path).write_text(json.dumps(dict(meta, **RESULTS), indent=1) + '\n')


def lengths():
    "The order of issue 11's table, then 16 more distinct lengths: 30 distinct lengths in all."
    first = [65536, 262144, 512, 1000, 2000, 3000, 4000, 5000, 6000, 7000, 8000, 9000, 10000, 40000]
    rng, more = random.Random(0), []
    while len(more) < 16:
        n = rng.randint(100, 131072)
        if n not in first + more: more.append(n)
    return first + more


def fwd_bwd(forward, params, n):
    "One training step of `forward` (B 1, d_model 512, bf16) at length n: (extra peak bytes, seconds, all gradients finite)."
    x = torch.randn(1, n, 512, device='cuda', dtype=torch.bfloat16, requires_grad=True)      # (B, N, d_model)
    gy = torch.randn_like(x)                                                                # (B, N, d_model)
    torch.cuda.synchronize(); torch.cuda.reset_peak_memory_stats()
    base = torch.cuda.memory_allocated(); t0 = time.perf_counter()
    grads = torch.autograd.grad(forward(x), [x] + params, gy)                               # fwd + bwd
    torch.cuda.synchronize()
    return torch.cuda.max_memory_allocated() - base, time.perf_counter() - t0, all(bool(torch.isfinite(g).all()) for g in grads)


def test_varied_lengths_stay_fused():
    dev = torch.device('cuda')
    torch.manual_seed(0)
    m = MSAttention(512, 8, 256, 64).to(dev, torch.bfloat16).train()
    params = [p for p in m.parameters()]
    rows = []
    for call, n in enumerate(lengths(), 1):
        extra, took, ok = fwd_bwd(m, params, n)
        row = dict(call=call, N=n, extra_peak_gib=round(extra / GIB, 4), bound_gib=round((BYTES_PER_TOKEN * n + SLACK) / GIB, 4),
                   bytes_per_token=round(extra / n), seconds=round(took, 3), graphs=flex_graph_count(), finite=ok)
        rows.append(row); print(row, flush=True)
        RESULTS['varied_lengths'] = dict(layer='MSAttention(512, 8, 256, 64)', dtype='bfloat16', mode='train, fwd+bwd', B=1,
                                         rows=rows)
        save()
        assert ok, row
        assert extra <= BYTES_PER_TOKEN * n + SLACK, f'extra peak memory not linear in N (dense fallback?): {row}'
    assert flex_graph_count() <= 6, f'{flex_graph_count()} compiled graphs for one variant: shapes are not dynamic'


def rel(a, b): return ((a.double() - b.double()).norm() / b.double().norm().clamp_min(1e-300)).item()


CASES = [  # N (ragged), W, causal, padding
    (1000, 64, False, None), (3001, 256, True, None), (2500, 100, False, 'middle'), (1337, 128, True, 'middle'),
    (777, 50, False, 'random'), (4099, 256, True, 'random')]


@pytest.mark.parametrize('dtype,tol', [(torch.float32, 1e-4), (torch.bfloat16, 2e-2)], ids=['float32', 'bfloat16'])
def test_fused_matches_float64(dtype, tol):
    dev, g = torch.device('cuda'), torch.Generator(device='cuda').manual_seed(1)
    out = []
    for N, W, causal, pad in CASES:
        B, H, D = 2, 4, 64
        q, k, v = (torch.randn(B, H, N, D, device=dev, dtype=torch.float64, generator=g) for _ in range(3))  # (B, H, N, D)
        go = torch.randn(B, H, N, D, device=dev, dtype=torch.float64, generator=g)                          # (B, H, N, D)
        kpm = None
        if pad == 'middle':
            kpm = torch.zeros(B, N, dtype=torch.bool, device=dev); kpm[:, N // 3: N // 3 + 3 * W] = True    # empty rows too
        elif pad == 'random':
            kpm = torch.rand(B, N, device=dev, generator=g) < 0.3
        if kpm is not None: kpm[1] = True                                                                   # one all-padding sequence
        q64, k64, v64 = (t.clone().requires_grad_(True) for t in (q, k, v))
        ref = banded_attention(q64, k64, v64, W, causal, kpm)                                               # (B, H, N, D) float64
        gref = torch.autograd.grad(ref, (q64, k64, v64), go)
        ql, kl, vl = (t.to(dtype).requires_grad_(True) for t in (q, k, v))
        o = flex_local_attention(ql, kl, vl, W, causal, kpm)                                                # (B, H, N, D) fused
        gf = torch.autograd.grad(o, (ql, kl, vl), go.to(dtype))
        e = dict(dtype=str(dtype).split('.')[-1], N=N, W=W, causal=causal, pad=pad, out=rel(o, ref),
                 dq=rel(gf[0], gref[0]), dk=rel(gf[1], gref[1]), dv=rel(gf[2], gref[2]),
                 finite=bool(torch.isfinite(o).all() and all(torch.isfinite(t).all() for t in gf)))
        if kpm is not None: e['padded_rows_zero'] = bool((o[1] == 0).all())
        out.append(e); print(e, flush=True)
        RESULTS.setdefault('float64_checks', []).append(e); save()
        assert e['finite'] and e.get('padded_rows_zero', True), e
        assert max(e['out'], e['dq'], e['dk'], e['dv']) < tol, e
    RESULTS['graphs_after_checks'] = flex_graph_count(); save()


def test_auto_takes_the_fused_path_and_rejects_bad_input():
    q = torch.randn(1, 2, 300, 64, device='cuda', dtype=torch.bfloat16)                  # (B, H, N, D)
    with torch.no_grad():
        a, b = local_attention(q, q, q, 32), flex_local_attention(q, q, q, 32)
    assert torch.equal(a, b)
    bad = torch.randn(1, 2, 300, 8, device='cuda', dtype=torch.bfloat16)                 # D = 8: not for the kernel
    with pytest.raises(ValueError, match='power of two'): flex_local_attention(bad, bad, bad, 32)
    with pytest.raises(ValueError, match='is on cpu'):
        flex_local_attention(q, q, q, 32, key_padding_mask=torch.zeros(1, 300, dtype=torch.bool))


@pytest.mark.parametrize('dtype,tol', [(torch.float32, 1e-3), (torch.bfloat16, 2e-2)], ids=['float32', 'bfloat16'])
def test_compressed_matches_float64(dtype, tol):
    dev, g = torch.device('cuda'), torch.Generator(device='cuda').manual_seed(2)
    for N, P, causal, pad in ((3001, 32, True, 'middle'), (4099, 64, False, 'random'), (5000, 64, True, None)):
        q, k, v, go = (torch.randn(2, 4, N, 64, device=dev, dtype=torch.float64, generator=g) for _ in range(4))  # (B, H, N, D)
        kpm = None
        if pad == 'middle': kpm = torch.zeros(2, N, dtype=torch.bool, device=dev); kpm[:, N // 3: N // 3 + 3 * P] = True
        elif pad == 'random': kpm = torch.rand(2, N, device=dev, generator=g) < 0.3
        r64 = [t.clone().requires_grad_(True) for t in (q, k, v)]
        ref = compressed_attention(*r64, P, causal, kpm)                                    # (B, H, N, D) float64
        gr = torch.autograd.grad(ref, r64, go)
        lo = [t.to(dtype).requires_grad_(True) for t in (q, k, v)]
        o = flex_compressed_attention(*lo, P, causal, kpm)                                  # (B, H, N, D) fused
        gf = torch.autograd.grad(o, lo, go.to(dtype))
        e = dict(dtype=str(dtype).split('.')[-1], N=N, P=P, causal=causal, pad=pad, out=rel(o, ref),
                 dq=rel(gf[0], gr[0]), dk=rel(gf[1], gr[1]), dv=rel(gf[2], gr[2]),
                 finite=bool(torch.isfinite(o).all() and all(torch.isfinite(t).all() for t in gf)))
        print(e, flush=True); RESULTS.setdefault('compressed_float64_checks', []).append(e); save()
        assert e['finite'] and max(e['out'], e['dq'], e['dk'], e['dv']) < tol, e


@pytest.mark.parametrize('dtype,tol', [(torch.float32, 1e-3), (torch.bfloat16, 2e-2)], ids=['float32', 'bfloat16'])
def test_selected_matches_float64(dtype, tol):
    dev, g = torch.device('cuda'), torch.Generator(device='cuda').manual_seed(3)
    for N, P, causal, pad in ((3001, 32, True, 'middle'), (4099, 64, False, 'random'), (5000, 64, True, None), (8192, 64, False, None)):
        q, k, v, go = (torch.randn(2, 4, N, 64, device=dev, dtype=torch.float64, generator=g) for _ in range(4))  # (B, H, N, D)
        kpm = None
        if pad == 'middle': kpm = torch.zeros(2, N, dtype=torch.bool, device=dev); kpm[:, N // 3: N // 3 + 3 * P] = True
        elif pad == 'random': kpm = torch.rand(2, N, device=dev, generator=g) < 0.3
        NB = n_chunks(N, P)
        idx = select_chunks(torch.randn(2, NB, NB, device=dev, generator=g), 4, causal)    # (B, NB, k)
        r64 = [t.clone().requires_grad_(True) for t in (q, k, v)]
        ref = selected_attention(*r64, idx, P, kpm); gr = torch.autograd.grad(ref, r64, go)
        branches = [('flex', flex_selected_attention), ('gather', gather_selected_attention)]
        if not causal and pad is None and N % P == 0:                                       # every slot holds a chunk: the mask-free SDPA path
            branches.append(('gather_full', lambda *a: gather_selected_attention(*a, full=True)))
        for name, fn in branches:
            lo = [t.to(dtype).requires_grad_(True) for t in (q, k, v)]
            o = fn(*lo, idx, P, kpm); gf = torch.autograd.grad(o, lo, go.to(dtype))
            e = dict(branch=name, dtype=str(dtype).split('.')[-1], N=N, P=P, causal=causal, pad=pad, out=rel(o, ref),
                     dq=rel(gf[0], gr[0]), dk=rel(gf[1], gr[1]), dv=rel(gf[2], gr[2]),
                     finite=bool(torch.isfinite(o).all() and all(torch.isfinite(t).all() for t in gf)))
            print(e, flush=True); RESULTS.setdefault('selected_float64_checks', []).append(e); save()
            assert e['finite'] and max(e['out'], e['dq'], e['dk'], e['dv']) < tol, e


@pytest.mark.parametrize('causal', [True, False], ids=['causal_padded', 'noncausal_unpadded'])
def test_fused_routed_layer_matches_layer(causal):
    "Causal with padding in the middle and a ragged N; non-causal, unpadded, N a multiple of P (the benchmark's case: the gather's mask-free path)."
    torch.manual_seed(0)
    N = 4097 if causal else 4096
    lay = MSAttention(256, 4, 64, 8, causal=causal, rope=True, memory='routed', chunk=64, top_k=4).cuda()
    x = torch.randn(2, N, 256, device='cuda', requires_grad=True)                           # (B, N, d_model)
    kpm = None
    if causal: kpm = torch.zeros(2, N, dtype=torch.bool, device='cuda'); kpm[1, 1000:1200] = True
    y0 = lay(x, kpm); g0 = torch.autograd.grad(y0.square().sum(), x)[0]
    for sel in SELECTED:                                                                    # 'gather' (the default) and 'flex'
        y1 = fused_routed_forward(lay, x, kpm, selected=sel); g1 = torch.autograd.grad(y1.square().sum(), x)[0]
        e = dict(out=rel(y1, y0), dx=rel(g1, g0)); RESULTS.setdefault('fused_routed_layer', {})[f'{sel}_{"causal" if causal else "noncausal"}'] = e; save()
        assert e['out'] < 1e-3 and e['dx'] < 1e-3, (sel, causal, e)


def test_block_score_kernel_matches_float64():
    "Chapter 13b's Triton score kernel (bf16, lse from the fused compressed branch) against the float64 slab of the same inputs."
    from msa_nb.chunk_memory import pool_chunks
    from msa_nb.flex_routed import routed_block_scores, kernel_block_scores
    dev, g = torch.device('cuda'), torch.Generator(device='cuda').manual_seed(5)
    for N, P, causal, pad in ((5000, 64, True, None), (4097, 32, False, 'middle')):
        q, k, v = (torch.randn(2, 4, N, 64, device=dev, generator=g).to(torch.bfloat16) for _ in range(3))  # (B, H, N, D)
        kpm = None
        if pad: kpm = torch.zeros(2, N, dtype=torch.bool, device=dev); kpm[:, N // 3: N // 3 + 3 * P] = True
        pl = pool_chunks(k, v, P, kpm)
        ref = routed_block_scores(q.double(), pl.k.double(), pl.valid, P, causal)      # (B, NB, C) float64 softmax, slab by slab
        with torch.no_grad(): _, lse = flex_compressed_attention(q, k, v, P, causal, kpm, pooled=pl, return_lse=True)
        got = kernel_block_scores(q, pl.k, pl.valid, P, causal, lse)                    # (B, NB, C) float32
        fin = torch.isfinite(ref)
        e = dict(N=N, P=P, causal=causal, pad=pad, rel=rel(got[fin], ref[fin]), same_inf=bool((torch.isinf(got) == torch.isinf(ref)).all()),
                 topk_agree=(select_chunks(got, 4, causal) == select_chunks(ref.float(), 4, causal)).float().mean().item())
        print(e, flush=True); RESULTS.setdefault('block_score_kernel_checks', []).append(e); save()
        assert e['same_inf'] and e['rel'] < 1e-5 and e['topk_agree'] > 0.99, e


def triton_variants(fn):
    "How many compiled variants a Triton kernel holds (None where this Triton keeps them somewhere else)."
    dc = getattr(fn, 'device_caches', None)                                                 # Triton >= 3.2: device -> (kernel cache, ...)
    if dc is not None: return sum(len(v[0]) for v in dc.values())
    c = getattr(fn, 'cache', None)                                                          # older: device -> {key: kernel}
    return sum(len(v) for v in c.values()) if isinstance(c, dict) else None


ROUTED = "MSAttention(512, 8, 256, 64, causal=True, rope=True, memory='routed', chunk=64, top_k=4)"


def routed_layer():
    "The layer `ROUTED` names, seeded, in bf16 on the GPU, training mode."
    torch.manual_seed(0)
    return MSAttention(512, 8, 256, 64, causal=True, rope=True, memory='routed', chunk=64, top_k=4).to('cuda', torch.bfloat16).train()


def test_routed_layer_varied_lengths():
    "Chapter 13b's fused routed layer (causal, rotary, gather) in training at 14 distinct lengths: memory linear in N, one score kernel for all."
    from msa_nb.flex_routed import _block_scores_kernel
    lay = routed_layer()
    params, rows, g0 = list(lay.parameters()), [], flex_graph_count()
    v0 = triton_variants(_block_scores_kernel) or 0
    for call, n in enumerate([65536, 262144, 512, 1000, 2000, 3000, 4000, 5000, 6000, 7000, 8000, 9000, 10000, 40000], 1):
        extra, took, ok = fwd_bwd(lambda x: fused_routed_forward(lay, x), params, n)
        v = triton_variants(_block_scores_kernel)
        row = dict(call=call, N=n, extra_peak_gib=round(extra / GIB, 4), bound_gib=round((2 * BYTES_PER_TOKEN * n + SLACK) / GIB, 4),
                   bytes_per_token=round(extra / n), seconds=round(took, 3), new_flex_graphs=flex_graph_count() - g0,
                   score_kernel_variants=None if v is None else v - v0, finite=ok)
        rows.append(row); print(row, flush=True)
        RESULTS['routed_varied_lengths'] = dict(layer=ROUTED,
                                                forward='fused_routed_forward (gather)', dtype='bfloat16', mode='train, fwd+bwd', B=1, rows=rows)
        save()
        assert row['finite'], row
        assert extra <= 2 * BYTES_PER_TOKEN * n + SLACK, f'extra peak memory not linear in N: {row}'
    assert flex_graph_count() - g0 <= 6, f'{flex_graph_count() - g0} new compiled FlexAttention graphs for one layer: shapes are not dynamic'
    v = triton_variants(_block_scores_kernel)
    assert v is None or v - v0 <= 1, f'the score kernel compiled {v - v0} variants for one layer: it specialises on the length'


def test_routed_layer_million_tokens():
    "The fused routed layer (causal, rotary, gather) in training at 1,048,576 tokens: more blocks than a CUDA grid axis holds, memory linear in N."
    import msa_nb.flex_routed as fr
    lay, n = routed_layer(), 2**20
    assert 8 * n // 64 > fr.GATHER_MAX_BATCH                                                # H N / P blocks: the gathered attention runs in pieces
    extra, took, ok = fwd_bwd(lambda x: fused_routed_forward(lay, x), list(lay.parameters()), n)
    row = dict(N=n, extra_peak_gib=round(extra / GIB, 4), bound_gib=round((2 * BYTES_PER_TOKEN * n + SLACK) / GIB, 4),
               bytes_per_token=round(extra / n), seconds=round(took, 3), finite=ok)
    RESULTS['routed_million'] = dict(layer=ROUTED,
                                     forward='fused_routed_forward (gather)', dtype='bfloat16', mode='train, fwd+bwd', B=1, rows=[row])
    save(); print(row, flush=True)
    assert ok, row
    assert extra <= 2 * BYTES_PER_TOKEN * n + SLACK, f'extra peak memory not linear in N: {row}'


def test_fallback_is_loud():
    q = torch.randn(1, 2, 1000, 64, device='cuda', dtype=torch.float16)                  # a dtype no test used yet
    old, flex.RECOMPILE_LIMIT = flex.RECOMPILE_LIMIT, flex_graph_count()
    free0 = torch.cuda.memory_allocated()
    try:
        with pytest.raises(FlexFallbackError, match='RECOMPILE_LIMIT') as e:
            with torch.no_grad(): flex_local_attention(q, q, q, 64)
    finally: flex.RECOMPILE_LIMIT = old
    RESULTS['fallback_error'] = str(e.value)[:400]; save()
    assert torch.cuda.memory_allocated() - free0 < 2**20                                # nothing N x N was built
