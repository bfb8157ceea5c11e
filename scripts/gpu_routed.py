"""Chapter 13b on the GPU, in one run: the fused selected branch, the block-score kernel and the fused routed layer against
chapter 13 (float64 and the layer itself, values and gradients), then the routed layer against a dense SDPA layer, bf16, 8K-1M tokens.

PYTHONUNBUFFERED=1 python3 scripts/gpu_routed.py   -> $OUT/routed_gpu.json (copied to data/ afterwards)
Imports only torch, einops and msa_nb (fastcore for msa_nb's docments; no nbdev needed on the device).
"""
import datetime, json, os, sys, time
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import torch
import torch.nn.functional as F
from einops import rearrange
from msa_nb.bench import time_fn, _device_name
from msa_nb.layer import MSAttention, apply_rope
from msa_nb.chunk_memory import n_chunks
from msa_nb.routing import select_chunks, selected_attention
from msa_nb.flex_routed import flex_selected_attention, fused_routed_forward
from msa_nb.flex import flex_graph_count

OUT = os.environ.get('OUT', '/tmp'); dev = torch.device('cuda'); T0 = time.time()
res = dict(device=_device_name(dev), torch=torch.__version__, date=datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ'),
           command='python3 scripts/gpu_routed.py')
def dump(): json.dump(res, open(os.path.join(OUT, 'routed_gpu.json'), 'w'), indent=1)
def rel(a, b): return ((a.double() - b.double()).norm() / b.double().norm().clamp_min(1e-300)).item()

# 1. correctness: the fused selected branch (float32, bfloat16) vs chapter 13's selected_attention in float64; the fused layer vs the layer
g = torch.Generator(device=dev).manual_seed(0); checks = []
for dtype in (torch.float32, torch.bfloat16):
    for N, P, causal, pad in ((5000, 64, True, None), (3001, 32, False, 'middle'), (4099, 64, True, 'random'), (777, 16, True, 'middle')):
        B, H, D = 2, 4, 64
        q, k, v, go = (torch.randn(B, H, N, D, device=dev, dtype=torch.float64, generator=g) for _ in range(4))
        kpm = None
        if pad == 'middle': kpm = torch.zeros(B, N, dtype=torch.bool, device=dev); kpm[:, N // 3: N // 3 + 3 * P] = True
        elif pad == 'random': kpm = torch.rand(B, N, device=dev, generator=g) < 0.3
        NB = n_chunks(N, P)
        idx = select_chunks(torch.randn(B, NB, NB, device=dev, generator=g), 4, causal)
        r64 = [t.clone().requires_grad_(True) for t in (q, k, v)]
        ref = selected_attention(*r64, idx, P, kpm); gr = torch.autograd.grad(ref, r64, go)
        lo = [t.to(dtype).requires_grad_(True) for t in (q, k, v)]
        o = flex_selected_attention(*lo, idx, P, kpm); gf = torch.autograd.grad(o, lo, go.to(dtype))
        e = dict(what='selected', dtype=str(dtype)[6:], N=N, P=P, causal=causal, pad=pad, out=rel(o, ref), dq=rel(gf[0], gr[0]),
                 dk=rel(gf[1], gr[1]), dv=rel(gf[2], gr[2]), finite=bool(torch.isfinite(o).all() and all(torch.isfinite(t).all() for t in gf)))
        checks.append(e); print(e, flush=True)
for N, pad in ((5000, False), (4097, True)):
    torch.manual_seed(N)
    lay = MSAttention(256, 4, 64, 8, causal=True, rope=True, memory='routed', chunk=64, top_k=4).to(dev)
    x = torch.randn(2, N, 256, device=dev, requires_grad=True)
    kpm = None
    if pad: kpm = torch.zeros(2, N, dtype=torch.bool, device=dev); kpm[1, N // 3: N // 3 + 200] = True
    y0 = lay(x, kpm); y1 = fused_routed_forward(lay, x, kpm)
    g0 = torch.autograd.grad(y0.square().sum(), x)[0]; g1 = torch.autograd.grad(y1.square().sum(), x)[0]
    e = dict(what='layer', dtype='float32', N=N, P=64, causal=True, pad=pad, out=rel(y1, y0), dq=rel(g1, g0), dk=0., dv=0.,
             finite=bool(torch.isfinite(y1).all() and torch.isfinite(g1).all()))
    checks.append(e); print(e, flush=True)
# the block scores: Triton kernel (float32, bfloat16, lse from the fused compressed branch) vs the slab reference in float64
from msa_nb.chunk_memory import pool_chunks
from msa_nb.flex_compressed import flex_compressed_attention
from msa_nb.flex_routed import routed_block_scores, kernel_block_scores
for N, P, causal, pad in ((5000, 64, True, None), (4097, 32, False, 'middle'), (3001, 16, True, 'random'), (8192, 64, False, None)):
    B, H, D = 2, 4, 64
    q, k, v = (torch.randn(B, H, N, D, device=dev, dtype=torch.float64, generator=g) for _ in range(3))
    kpm = None
    if pad == 'middle': kpm = torch.zeros(B, N, dtype=torch.bool, device=dev); kpm[:, N // 3: N // 3 + 3 * P] = True
    elif pad == 'random': kpm = torch.rand(B, N, device=dev, generator=g) < 0.3
    for dtype in (torch.float32, torch.bfloat16):
        ql, kl, vl = (t.to(dtype) for t in (q, k, v))
        pl = pool_chunks(kl, vl, P, kpm)
        ref = routed_block_scores(ql.double(), pl.k.double(), pl.valid, P, causal)  # float64 softmax of the same inputs, slab by slab
        _, lse = flex_compressed_attention(ql, kl, vl, P, causal, kpm, pooled=pl, return_lse=True)
        got = kernel_block_scores(ql, pl.k, pl.valid, P, causal, lse)
        fin = torch.isfinite(ref)
        same_inf = bool((torch.isinf(got) == torch.isinf(ref)).all())
        err = rel(got[fin], ref[fin])
        kk = 4; sel_ref = select_chunks(ref.float(), kk, causal); sel_got = select_chunks(got, kk, causal)
        agree = (sel_ref == sel_got).float().mean().item()
        e = dict(what='block_scores', dtype=str(dtype)[6:], N=N, P=P, causal=causal, pad=pad, out=err, dq=0., dk=0., dv=0.,
                 topk_agree=agree, finite=bool(same_inf and not torch.isnan(got).any()))
        checks.append(e); print(e, flush=True)
res['checks'] = checks
res['correct'] = all(c['finite'] and max(c['out'], c['dq'], c['dk'], c['dv']) < (1e-3 if c['dtype'] == 'float32' else 2e-2) for c in checks)
res['correct'] = res['correct'] and all(c['topk_agree'] > 0.99 for c in checks if c['what'] == 'block_scores' and c['dtype'] == 'float32')
dump(); print('checks', f'{time.time() - T0:.0f} s', res['correct'], flush=True)

# 2. timing: one causal layer, d_model 512, 8 heads of 64, W 256, P 64, k 4, bf16, B 1; dense = same projections around SDPA
from torch.nn.attention import sdpa_kernel, SDPBackend
torch.manual_seed(0)
lay = MSAttention(512, 8, 256, 8, causal=True, rope=True, memory='routed', chunk=64, top_k=4).to(dev, torch.bfloat16)
def dense(x):
    q, k, v = rearrange(lay.qkv(x), 'b n (three h d) -> three b h n d', three=3, h=8)
    q, k = apply_rope(q, lay.rope_base), apply_rope(k, lay.rope_base)
    with sdpa_kernel([SDPBackend.CUDNN_ATTENTION, SDPBackend.FLASH_ATTENTION]): o = F.scaled_dot_product_attention(q, k, v, is_causal=True)
    return lay.out(rearrange(o, 'b h n d -> b n (h d)'))
impls = dict(sdpa=dense, routed=lambda x: fused_routed_forward(lay, x))
rows = []; res['cfg'] = dict(B=1, d_model=512, heads=8, D=64, window=256, P=64, top_k=4, causal=True, dtype='bfloat16'); dump()
for N in (8192, 32768, 65536, 262144, 1048576):
    for name, fn in impls.items():
        for bw in (False, True):
            mode = 'fwd+bwd' if bw else 'fwd'
            if name == 'sdpa' and N > 262144 and bw: rows.append(dict(N=N, impl=name, mode=mode, median_ms=None, note='skipped: seconds per call')); continue
            if time.time() - T0 > float(os.environ.get('BUDGET_S', 420)): rows.append(dict(N=N, impl=name, mode=mode, median_ms=None, note='skipped: run budget')); continue
            x = torch.randn(1, N, 512, device=dev, dtype=torch.bfloat16, requires_grad=bw)
            gy = torch.randn(1, N, 512, device=dev, dtype=torch.bfloat16)
            if bw: f = lambda: torch.autograd.grad(fn(x), [x, *lay.parameters()], gy, allow_unused=True)
            else:
                def f():
                    with torch.no_grad(): return fn(x)
            reps, warm = (3, 1) if N >= 262144 else (7, 2)
            try:
                t = time_fn(f, warmup=warm, reps=reps, device=dev)
                torch.cuda.synchronize(); torch.cuda.reset_peak_memory_stats(); base = torch.cuda.memory_allocated()
                f(); torch.cuda.synchronize(); peak = (torch.cuda.max_memory_allocated() - base) / 2**20
                r = dict(N=N, impl=name, mode=mode, median_ms=t.median_ms, q1_ms=t.q1_ms, q3_ms=t.q3_ms, reps=reps, peak_mib=peak)
            except torch.cuda.OutOfMemoryError:
                torch.cuda.empty_cache(); r = dict(N=N, impl=name, mode=mode, median_ms=None, peak_mib=None, note='out of memory')
            rows.append(r); print(r, f'{time.time() - T0:.0f} s', flush=True)
            res['rows'] = rows; res['flex_graphs'] = flex_graph_count(); dump()
            del x, gy
res['wall_s'] = round(time.time() - T0, 1); dump()
print('correct:', res['correct'], 'graphs:', flex_graph_count(), 'wall', res['wall_s'])
