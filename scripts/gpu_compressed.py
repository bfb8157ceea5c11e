"""Chapter 12b on the GPU, in one run: the fused compressed branch against chapter 12 in float64 (values and gradients),
then a timing sweep against dense cuDNN/flash SDPA and the unfused compressed branch, bf16, 8K-1M tokens.

PYTHONUNBUFFERED=1 python3 scripts/gpu_compressed.py   -> $OUT/compressed_gpu.json (copied to data/ afterwards)
Imports only torch, einops and msa_nb (no fastcore / nbdev needed on the device).
"""
import datetime, json, os, sys, time
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import torch
import torch.nn.functional as F
from msa_nb.bench import time_fn, _device_name
from msa_nb.chunk_memory import compressed_attention
from msa_nb.flex_compressed import flex_compressed_attention
from msa_nb.flex import flex_graph_count

OUT = os.environ.get('OUT', '/tmp'); dev = torch.device('cuda')
res = dict(device=_device_name(dev), torch=torch.__version__, date=datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ'),
           command='python3 scripts/gpu_compressed.py')
def dump(): json.dump(res, open(os.path.join(OUT, 'compressed_gpu.json'), 'w'), indent=1)
def rel(a, b): return ((a.double() - b.double()).norm() / b.double().norm().clamp_min(1e-300)).item()

# 1. correctness: fused (float32, bfloat16) vs chapter 12's compressed_attention in float64, values and gradients
g = torch.Generator(device=dev).manual_seed(0); checks = []
for dtype in (torch.float32, torch.bfloat16):
    for N, P, causal, pad in ((5000, 64, True, None), (3001, 32, True, 'middle'), (4099, 64, False, 'random'), (777, 16, True, 'random')):
        B, H, D = 2, 4, 64
        q, k, v, go = (torch.randn(B, H, N, D, device=dev, dtype=torch.float64, generator=g) for _ in range(4))
        kpm = None
        if pad == 'middle': kpm = torch.zeros(B, N, dtype=torch.bool, device=dev); kpm[:, N // 3: N // 3 + 3 * P] = True
        elif pad == 'random': kpm = torch.rand(B, N, device=dev, generator=g) < 0.3
        if kpm is not None: kpm[1] = True
        r64 = [t.clone().requires_grad_(True) for t in (q, k, v)]
        ref = compressed_attention(*r64, P, causal, kpm); gr = torch.autograd.grad(ref, r64, go)
        lo = [t.to(dtype).requires_grad_(True) for t in (q, k, v)]
        o = flex_compressed_attention(*lo, P, causal, kpm); gf = torch.autograd.grad(o, lo, go.to(dtype))
        e = dict(dtype=str(dtype)[6:], N=N, P=P, causal=causal, pad=pad, out=rel(o, ref), dq=rel(gf[0], gr[0]), dk=rel(gf[1], gr[1]),
                 dv=rel(gf[2], gr[2]), finite=bool(torch.isfinite(o).all() and all(torch.isfinite(t).all() for t in gf)))
        checks.append(e); print(e, flush=True)
res['checks'] = checks; res['correct'] = all(c['finite'] and max(c['out'], c['dq'], c['dk'], c['dv']) < (1e-3 if c['dtype'] == 'float32' else 2e-2)
                                            for c in checks); dump()
del q, k, v, go, r64, ref, gr, lo, o, gf

# 2. timing: B 1, 8 heads of 64, P 64, causal, bf16; median of reps after warm-up, CUDA events; extra peak memory
from torch.nn.attention import sdpa_kernel, SDPBackend
def sdpa(q, k, v):
    with sdpa_kernel([SDPBackend.CUDNN_ATTENTION, SDPBackend.FLASH_ATTENTION]): return F.scaled_dot_product_attention(q, k, v, is_causal=True)
impls = dict(sdpa=sdpa, compressed=lambda q, k, v: compressed_attention(q, k, v, 64, True),
             flex_compressed=lambda q, k, v: flex_compressed_attention(q, k, v, 64, True))
rows = []; res['cfg'] = dict(B=1, heads=8, D=64, P=64, causal=True, dtype='bfloat16'); t_start = time.time()
for N in (8192, 32768, 131072, 524288, 1048576):
    for name, fn in impls.items():
        for bw in (False, True):
            if name == 'compressed' and N > 131072: rows.append(dict(N=N, impl=name, mode='fwd+bwd' if bw else 'fwd', median_ms=None, peak_mib=None, note='skipped: N x C scores too large')); continue
            x = [torch.randn(1, 8, N, 64, device=dev, dtype=torch.bfloat16, requires_grad=bw) for _ in range(3)]
            gy = torch.randn(1, 8, N, 64, device=dev, dtype=torch.bfloat16)
            if bw: f = lambda: torch.autograd.grad(fn(*x), x, gy)
            else:
                def f():
                    with torch.no_grad(): return fn(*x)
            reps, warm = (3, 1) if N >= 524288 else (7, 2)
            try:
                t = time_fn(f, warmup=warm, reps=reps, device=dev)
                torch.cuda.synchronize(); torch.cuda.reset_peak_memory_stats(); base = torch.cuda.memory_allocated()
                f(); torch.cuda.synchronize(); peak = (torch.cuda.max_memory_allocated() - base) / 2**20
                r = dict(N=N, impl=name, mode='fwd+bwd' if bw else 'fwd', median_ms=t.median_ms, q1_ms=t.q1_ms, q3_ms=t.q3_ms, reps=reps, peak_mib=peak)
            except torch.cuda.OutOfMemoryError:
                torch.cuda.empty_cache(); r = dict(N=N, impl=name, mode='fwd+bwd' if bw else 'fwd', median_ms=None, peak_mib=None, note='out of memory')
            rows.append(r); print(r, f'{time.time() - t_start:.0f} s', flush=True)
            res['rows'] = rows; res['flex_graphs'] = flex_graph_count(); dump()
            del x, gy
print('correct:', res['correct'], 'graphs:', flex_graph_count())
