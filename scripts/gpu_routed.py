"""Chapter 13b on the GPU, in one run: the two selected branches (FlexAttention block mask, gather + SDPA), the block-score
kernel and the fused routed layer against chapter 13 (float64 and the layer itself, values and gradients), the gather's
backward three ways at 65,536 tokens (autograd's index_add, F.embedding's sorted backward, sort + segment_reduce), then the routed
layer (both selected branches, the gathered one also as a CUDA graph up to 64K) against the dense layer, bf16, 4K-1M tokens, forward and forward + backward, in two configs
side by side: chapter 10's (`msa_nb.bench.GPU_CONFIG`: B 2, non-causal, no rotary positions, `SDPALayer` against
`make_layer('msa_routed')`) and a causal language-model layer (B 1, rotary positions, causal SDPA on cuDNN or flash).

BUDGET_S=210 PYTHONUNBUFFERED=1 python3 scripts/gpu_routed.py   -> $OUT/routed_gpu.json (copied to data/ afterwards)
A follow-up run of some lengths only, without the checks:
SWEEP_NS=1048576 SKIP_CHECKS=1 RES=routed_gpu_1m.json python3 scripts/gpu_routed.py   -> $OUT/routed_gpu_1m.json
Imports only torch, einops and msa_nb (fastcore for msa_nb's docments; no nbdev needed on the device).
"""
import datetime, json, os, sys, time
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import torch
import torch.nn.functional as F
from einops import rearrange
from msa_nb.bench import time_fn, _device_name, make_layer, GPU_CONFIG, cuda_graphed
from msa_nb.layer import MSAttention, apply_rope
from msa_nb.chunk_memory import n_chunks
from msa_nb.routing import select_chunks, selected_attention
from msa_nb.flex_routed import flex_selected_attention, gather_selected_attention, fused_routed_forward, SELECTED
from msa_nb.flex import flex_graph_count

OUT = os.environ.get('OUT', '/tmp'); dev = torch.device('cuda'); T0 = time.time(); BUDGET = float(os.environ.get('BUDGET_S', 420))
res = dict(device=_device_name(dev), torch=torch.__version__, date=datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ'),
           command=' '.join(f'{k}={os.environ[k]}' for k in ('SWEEP_NS', 'SKIP_CHECKS', 'RES') if k in os.environ) + f' BUDGET_S={BUDGET:g} python3 scripts/gpu_routed.py')
NS = [int(n) for n in os.environ.get('SWEEP_NS', '65536,8192,4096,16384,32768,262144,1048576').split(',')]  # the goal's length first, then the crossover, the long ones last
CHECKS = os.environ.get('SKIP_CHECKS') != '1'
def dump(): json.dump(res, open(os.path.join(OUT, os.environ.get('RES', 'routed_gpu.json')), 'w'), indent=1)
def rel(a, b): return ((a.double() - b.double()).norm() / b.double().norm().clamp_min(1e-300)).item()

# 0. the compiled elementwise glue must build here; if it cannot, say so and time the eager glue instead
import msa_nb.flex_routed as fr
try:
    _l = MSAttention(64, 2, 16, 8, causal=True, rope=True, memory='routed', chunk=16, top_k=2).to(dev)
    _x = torch.randn(1, 100, 64, device=dev, requires_grad=True)
    torch.autograd.grad(fused_routed_forward(_l, _x).sum(), _x); res['glue_compiled'] = fr.GLUE_COMPILE
except Exception as ex:
    res['glue_compile_error'] = repr(ex)[:500]; fr.GLUE_COMPILE = False; res['glue_compiled'] = False; print('glue compile failed:', ex, flush=True)

# 1. correctness: both selected branches (float32, bfloat16) vs chapter 13's selected_attention in float64; the fused layer vs the layer
g = torch.Generator(device=dev).manual_seed(0); checks = []
SEL = dict(flex=flex_selected_attention, gather=gather_selected_attention)
for dtype in (torch.float32, torch.bfloat16) if CHECKS else ():
    for N, P, causal, pad in ((5000, 64, True, None), (3001, 32, False, 'middle'), (4099, 64, True, 'random'), (777, 16, True, 'middle'), (8192, 64, False, None)):
        B, H, D = 2, 4, 64
        q, k, v, go = (torch.randn(B, H, N, D, device=dev, dtype=torch.float64, generator=g) for _ in range(4))
        kpm = None
        if pad == 'middle': kpm = torch.zeros(B, N, dtype=torch.bool, device=dev); kpm[:, N // 3: N // 3 + 3 * P] = True
        elif pad == 'random': kpm = torch.rand(B, N, device=dev, generator=g) < 0.3
        NB = n_chunks(N, P)
        idx = select_chunks(torch.randn(B, NB, NB, device=dev, generator=g), 4, causal)
        r64 = [t.clone().requires_grad_(True) for t in (q, k, v)]
        ref = selected_attention(*r64, idx, P, kpm); gr = torch.autograd.grad(ref, r64, go)
        for name, fn in SEL.items():
            e = dict(what=f'selected_{name}', dtype=str(dtype)[6:], N=N, P=P, causal=causal, pad=pad)
            try:
                lo = [t.to(dtype).requires_grad_(True) for t in (q, k, v)]
                o = fn(*lo, idx, P, kpm, **({'full': not causal} if name == 'gather' else {})); gf = torch.autograd.grad(o, lo, go.to(dtype))
                e.update(out=rel(o, ref), dq=rel(gf[0], gr[0]), dk=rel(gf[1], gr[1]), dv=rel(gf[2], gr[2]),
                         finite=bool(torch.isfinite(o).all() and all(torch.isfinite(t).all() for t in gf)))
            except Exception as ex: e.update(out=1., dq=1., dk=1., dv=1., finite=False, error=repr(ex)[:300])
            checks.append(e); print(e, flush=True)
for N, pad, causal in ((5000, False, True), (4097, True, True), (8192, False, False)) if CHECKS else ():
    torch.manual_seed(N)
    lay = MSAttention(256, 4, 64, 8, causal=causal, rope=causal, memory='routed', chunk=64, top_k=4).to(dev)
    x = torch.randn(2, N, 256, device=dev, requires_grad=True)
    kpm = None
    if pad: kpm = torch.zeros(2, N, dtype=torch.bool, device=dev); kpm[1, N // 3: N // 3 + 200] = True
    y0 = lay(x, kpm); g0 = torch.autograd.grad(y0.square().sum(), x)[0]
    for sel in SELECTED:
        e = dict(what=f'layer_{sel}', dtype='float32', N=N, P=64, causal=causal, pad=pad, dk=0., dv=0.)
        try:
            y1 = fused_routed_forward(lay, x, kpm, selected=sel); g1 = torch.autograd.grad(y1.square().sum(), x)[0]
            e.update(out=rel(y1, y0), dq=rel(g1, g0), finite=bool(torch.isfinite(y1).all() and torch.isfinite(g1).all()))
        except Exception as ex: e.update(out=1., dq=1., finite=False, error=repr(ex)[:300])
        checks.append(e); print(e, flush=True)
# the block scores: Triton kernel (float32, bfloat16, lse from the fused compressed branch) vs the slab reference in float64
from msa_nb.chunk_memory import pool_chunks
from msa_nb.flex_compressed import flex_compressed_attention
from msa_nb.flex_routed import routed_block_scores, kernel_block_scores
for N, P, causal, pad in ((5000, 64, True, None), (4097, 32, False, 'middle'), (8192, 64, False, None)) if CHECKS else ():
    B, H, D = 2, 4, 64
    q, k, v = (torch.randn(B, H, N, D, device=dev, dtype=torch.float64, generator=g) for _ in range(3))
    kpm = None
    if pad == 'middle': kpm = torch.zeros(B, N, dtype=torch.bool, device=dev); kpm[:, N // 3: N // 3 + 3 * P] = True
    for dtype in (torch.float32, torch.bfloat16):
        ql, kl, vl = (t.to(dtype) for t in (q, k, v))
        pl = pool_chunks(kl, vl, P, kpm)
        ref = routed_block_scores(ql.double(), pl.k.double(), pl.valid, P, causal)  # float64 softmax of the same inputs, slab by slab
        _, lse = flex_compressed_attention(ql, kl, vl, P, causal, kpm, pooled=pl, return_lse=True)
        got = kernel_block_scores(ql, pl.k, pl.valid, P, causal, lse)
        fin = torch.isfinite(ref)
        same_inf = bool((torch.isinf(got) == torch.isinf(ref)).all())
        agree = (select_chunks(ref.float(), 4, causal) == select_chunks(got, 4, causal)).float().mean().item()
        e = dict(what='block_scores', dtype=str(dtype)[6:], N=N, P=P, causal=causal, pad=pad, out=rel(got[fin], ref[fin]), dq=0., dk=0., dv=0.,
                 topk_agree=agree, finite=bool(same_inf and not torch.isnan(got).any()))
        checks.append(e); print(e, flush=True)
res['checks'] = checks
res['correct'] = all(c['finite'] and max(c['out'], c['dq'], c['dk'], c['dv']) < (1e-3 if c['dtype'] == 'float32' else 2e-2) for c in checks)
res['correct'] = res['correct'] and all(c['topk_agree'] > 0.99 for c in checks if c['what'] == 'block_scores' and c['dtype'] == 'float32')
if not CHECKS: res['correct'] = None                                      # this run checked nothing: no verdict
dump(); print('checks', f'{time.time() - T0:.0f} s', res['correct'], flush=True)

# 1b. the gather's backward, three ways, at chapter 10's 65,536 tokens (B 2, H 8, P 64, k 4, bf16): autograd's index_add
# (atomic additions, the default), F.embedding (its CUDA backward sorts the rows and sums each run in float32) and a sort +
# segment_reduce (chapter 13b's exercise 3); selections random and skewed (16 chunks every block prefers); float32 values checked first
def gather_backward_variants(dev, N=65536, B=2, H=8, P=64, D=64, kk=4, dtype=torch.bfloat16, reps=7):
    NB = N // P; out = []
    def seg(x, rows, gy):                                           # sort + segment sum, the exercise's backward
        order = rows.argsort(stable=True); counts = torch.bincount(rows, minlength=x.shape[0])
        return torch.segment_reduce(gy.flatten(1)[order], 'sum', lengths=counts).view_as(x)
    ways = dict(index_add=lambda x, rows, gy: torch.autograd.grad(x.index_select(0, rows), x, gy)[0],
                embedding=lambda x, rows, gy: torch.autograd.grad(F.embedding(rows, x.flatten(1)).view(-1, *x.shape[1:]), x, gy)[0],
                segment_reduce=lambda x, rows, gy: seg(x, rows, gy))
    g = torch.Generator(device=dev).manual_seed(7)
    for name, bias in (('random', 0.), ('skewed', 4.)):
        s = torch.randn(B, NB, NB, device=dev, generator=g) + bias * (torch.arange(NB, device=dev) < 16)  # (B, NB, C)
        idx = select_chunks(s, kk)                                                                         # (B, NB, k)
        rows = (torch.arange(B * H, device=dev).view(B, H, 1) * NB + idx.view(B, 1, NB * kk)).flatten()    # (B H NB k,)
        x32 = torch.randn(B * H * NB, P, D, device=dev, generator=g, requires_grad=True)                   # (B H C, P, D)
        gy32 = torch.randn(rows.numel(), P, D, device=dev, generator=g)
        ref = ways['index_add'](x32.double().detach().requires_grad_(True), rows, gy32.double())
        e = dict(selections=name, N=N, max_picks=int(torch.bincount(rows).max()))
        for w, fn in ways.items():
            e[f'{w}_rel_fp32'] = rel(fn(x32, rows, gy32), ref)
            xb, gyb = x32.detach().to(dtype).requires_grad_(True), gy32.to(dtype)
            e[f'{w}_rel_bf16'] = rel(fn(xb, rows, gyb), ref)
            e[f'{w}_ms'] = time_fn(lambda: fn(xb, rows, gyb), warmup=2, reps=reps, device=dev).median_ms
        out.append(e); print(e, flush=True)
    return out
try:
    if CHECKS: res['gather_backward'] = gather_backward_variants(dev); dump()
except Exception as ex: res['gather_backward_error'] = repr(ex)[:300]; dump(); print('gather backward variants failed:', ex, flush=True)

# 2. timing, two configs side by side: d_model 512, 8 heads of 64, W 256, P 64, k 4, bf16; dense = same width around SDPA
from torch.nn.attention import sdpa_kernel, SDPBackend
torch.manual_seed(0)
ch10_dense = make_layer('sdpa', GPU_CONFIG, dev)                          # chapter 10's SDPALayer: non-causal, no rotary positions
ch10_routed = make_layer('msa_routed', GPU_CONFIG, dev).layer             # chapter 10's RoutedLayer's MSAttention(memory='routed')
lay = MSAttention(512, 8, 256, 8, causal=True, rope=True, memory='routed', chunk=64, top_k=4).to(dev, torch.bfloat16)
def causal_dense(x):
    q, k, v = rearrange(lay.qkv(x), 'b n (three h d) -> three b h n d', three=3, h=8)
    q, k = apply_rope(q, lay.rope_base), apply_rope(k, lay.rope_base)
    with sdpa_kernel([SDPBackend.CUDNN_ATTENTION, SDPBackend.FLASH_ATTENTION]): o = F.scaled_dot_product_attention(q, k, v, is_causal=True)
    return lay.out(rearrange(o, 'b h n d -> b n (h d)'))
CFGS = dict(
    ch10=dict(B=2, causal=False, rope=False, impls=dict(sdpa=ch10_dense, routed_flex=lambda x: fused_routed_forward(ch10_routed, x, selected='flex'),
                                                         routed_gather=lambda x: fused_routed_forward(ch10_routed, x, selected='gather'))),
    causal=dict(B=1, causal=True, rope=True, impls=dict(sdpa=causal_dense, routed_flex=lambda x: fused_routed_forward(lay, x, selected='flex'),
                                                         routed_gather=lambda x: fused_routed_forward(lay, x, selected='gather'))))
FLEX_NS, CG_MAX = (65536,), 65536       # the block-mask branch only at the goal's length (measured slower); CUDA graphs up to 64K (launch time matters below)
CG = ('routed_gather',)                 # also timed recorded as a CUDA graph, as '<name>_cg'
res['cfg'] = dict(d_model=512, heads=8, D=64, window=256, P=64, top_k=4, dtype='bfloat16',
                  configs={n: {k: v for k, v in c.items() if k != 'impls'} for n, c in CFGS.items()},
                  dense=dict(ch10="msa_nb.bench.SDPALayer (F.scaled_dot_product_attention, default backend)",
                             causal="same qkv/out and rotary positions around F.scaled_dot_product_attention(is_causal=True) on cuDNN or flash"))
rows = []; dump()
for N in NS:
    for cname, c in CFGS.items():
        for name in [*c['impls'], *(f'{n}_cg' for n in CG)]:
            fn = c['impls'][name.removesuffix('_cg')]
            for bw in (False, True):
                mode = 'fwd+bwd' if bw else 'fwd'
                base = dict(cfg=cname, N=N, impl=name, mode=mode)
                if name == 'sdpa' and N > 262144 and bw: rows.append(dict(base, median_ms=None, note='skipped: seconds per call')); continue
                if name == 'routed_flex' and N not in FLEX_NS: continue
                if name.endswith('_cg') and N > CG_MAX: continue
                if time.time() - T0 > BUDGET: rows.append(dict(base, median_ms=None, note='skipped: run budget')); continue
                x = torch.randn(c['B'], N, 512, device=dev, dtype=torch.bfloat16, requires_grad=bw)
                gy = torch.randn(c['B'], N, 512, device=dev, dtype=torch.bfloat16)
                params = list(ch10_dense.parameters() if fn is ch10_dense else ch10_routed.parameters() if cname == 'ch10' else lay.parameters())
                if bw: f = lambda: torch.autograd.grad(fn(x), [x, *params], gy, allow_unused=True)
                else:
                    def f():
                        with torch.no_grad(): return fn(x)
                reps, warm = (3, 1) if N >= 262144 else (7, 2)
                if name == 'sdpa' and N > 262144: reps, warm = 1, 0            # seconds per call: one timed call (kernels chosen at 262K)
                try:
                    if name.endswith('_cg'): f = cuda_graphed(f, dev, warmup=warm + 1)    # recorded once, replayed (chapter 10's `cuda_graphed`)
                    t = time_fn(f, warmup=warm, reps=reps, device=dev)
                    peak = None
                    if not (name == 'sdpa' and N >= 262144) and not name.endswith('_cg'):  # dense: O(N) memory, not re-run at seconds per call; a replay allocates nothing
                        torch.cuda.synchronize(); torch.cuda.reset_peak_memory_stats(); m0 = torch.cuda.memory_allocated()
                        f(); torch.cuda.synchronize(); peak = (torch.cuda.max_memory_allocated() - m0) / 2**20
                    r = dict(base, median_ms=t.median_ms, q1_ms=t.q1_ms, q3_ms=t.q3_ms, reps=reps, peak_mib=peak)
                except torch.cuda.OutOfMemoryError:
                    torch.cuda.empty_cache(); r = dict(base, median_ms=None, peak_mib=None, note='out of memory')
                except Exception as ex: r = dict(base, median_ms=None, peak_mib=None, note=f'error: {ex!r}'[:300])
                rows.append(r); print(r, f'{time.time() - T0:.0f} s', flush=True)
                res['rows'] = rows; res['flex_graphs'] = flex_graph_count(); dump()
                del x, gy, f; torch.cuda.empty_cache()                          # a graph's memory pool goes with it
res['rows'] = rows; res['wall_s'] = round(time.time() - T0, 1); dump()
print('correct:', res['correct'], 'graphs:', flex_graph_count(), 'wall', res['wall_s'])
for cname in CFGS:
    for mode in ('fwd', 'fwd+bwd'):
        for N in (4096, 8192, 16384, 32768, 65536, 262144, 1048576):
            t = {r['impl']: r.get('median_ms') for r in rows if r['cfg'] == cname and r['N'] == N and r['mode'] == mode}
            d = t.get('sdpa')
            print(cname, mode, N, ' '.join(f"{k} {v:.2f}" + (f" ({d / v:.1f}x)" if d and v and k != 'sdpa' else '') for k, v in t.items() if v))
