"""The GPU measurements of chapter 10, in one run on the device machine (H100): correctness, ceiling, core TFLOP/s, sweep.

PYTHONUNBUFFERED=1 python3 scripts/gpu_sweep.py   -> $OUT/bench_gpu.csv, $OUT/gpu_extra.json (copied to data/ afterwards)
Imports only torch, einops and msa_nb (no fastcore / nbdev needed on the device).
"""
import json, os, sys, time
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import torch
import torch._dynamo
torch._dynamo.config.cache_size_limit = 64
from msa_nb.bench import (GPU_CONFIG, sweep, save_rows, ratio_table, crossover, _series, time_fn, local_core_flops,
                          matmul_tflops, make_layer, _device_name)
from msa_nb.chunked import chunked_attention
from msa_nb.flex import local_attention, flex_local_attention

OUT = os.environ.get('OUT', '/tmp'); dev = torch.device('cuda'); t_start = time.time()
extra = dict(device=_device_name(dev), torch=torch.__version__, cfg=GPU_CONFIG)
print(extra, flush=True)
def rel(a, b): return ((a.double() - b.double()).norm() / b.double().norm()).item()
def dump(): json.dump(extra, open(os.path.join(OUT, 'gpu_extra.json'), 'w'), indent=1)

def sec_correctness():
    global rows
    # 1. correctness of the local paths (bf16 vs fp32 chunked reference), out and grads; fresh random inputs each case
    corr = []
    torch.manual_seed(1)
    for N, W, causal, pad in ((65536, 256, False, None), (16384, 256, True, None), (5000, 256, False, 0.3), (3001, 100, True, 0.5)):
        q, k, v = (torch.randn(2, 8, N, 64, device=dev, dtype=torch.bfloat16, requires_grad=True) for _ in range(3))
        kpm = None if pad is None else torch.rand(2, N, device=dev) < pad
        if kpm is not None: kpm[1, :N // 3] = True                                  # a long all-padding stretch: empty rows
        go = torch.randn_like(q)
        q32, k32, v32 = (t.detach().float().requires_grad_(True) for t in (q, k, v))
        r = chunked_attention(q32, k32, v32, W, causal, kpm); gr = torch.autograd.grad(r, (q32, k32, v32), go.float())
        for backend in ('flex', 'chunked'):
            o = local_attention(q, k, v, W, causal, kpm, backend=backend); g = torch.autograd.grad(o, (q, k, v), go)
            e = dict(N=N, W=W, causal=causal, pad=pad, backend=backend, out=rel(o, r), dq=rel(g[0], gr[0]), dk=rel(g[1], gr[1]),
                     dv=rel(g[2], gr[2]), finite=bool(torch.isfinite(o).all() and all(torch.isfinite(x).all() for x in g)))
            corr.append(e); print(e, flush=True)
    del q, k, v, go, q32, k32, v32, r, gr, o, g
    # the whole layer: bf16 with the fused path vs the same weights in fp32 through the chunked path
    torch.manual_seed(2)
    lf = make_layer('msa_flex', GPU_CONFIG, dev); lr = make_layer('msa', dict(GPU_CONFIG, dtype='float32'), dev)
    lr.load_state_dict({k: v.float() for k, v in lf.state_dict().items()})
    x = torch.randn(2, 8192, 512, device=dev, requires_grad=True); gy = torch.randn_like(x)
    xb = x.detach().bfloat16().requires_grad_(True)
    yb = lf(xb); gb = torch.autograd.grad(yb, [xb] + list(lf.parameters()), gy.bfloat16())
    yr = lr(x); gr = torch.autograd.grad(yr, [x] + list(lr.parameters()), gy)
    extra['layer_rel_l2'] = dict(out=rel(yb, yr), dx=rel(gb[0], gr[0]),
                                 dparams=rel(torch.cat([a.flatten().float() for a in gb[1:]]), torch.cat([a.flatten() for a in gr[1:]])))
    print('layer', extra['layer_rel_l2'], flush=True)
    extra['correctness'] = corr; extra['correct'] = all(c['finite'] and max(c['out'], c['dq'], c['dk'], c['dv']) < 1e-2 for c in corr)
    del lf, lr, x, xb, yb, yr, gb, gr; dump()


def sec_core():
    global rows
    # 2. ceilings and the local core's useful rate
    extra['matmul_bf16_tflops'] = matmul_tflops(8192, torch.bfloat16, dev)
    a = torch.empty(2**28, device=dev, dtype=torch.bfloat16).normal_(); b = torch.empty_like(a)
    extra['copy_tb_s'] = 2 * a.numel() * 2 / time_fn(b.copy_, a, warmup=3, reps=10, device=dev).median_ms / 1e9
    del a, b
    N, W = 65536, 256
    q, k, v = (torch.randn(2, 8, N, 64, device=dev, dtype=torch.bfloat16, requires_grad=True) for _ in range(3)); go = torch.randn_like(q)
    core = {}
    for name, fn in (('flex', lambda: flex_local_attention(q, k, v, W)), ('chunked', lambda: chunked_attention(q, k, v, W)),
                     ('sdpa_dense', lambda: torch.nn.functional.scaled_dot_product_attention(q, k, v))):
        def fwd():
            with torch.no_grad(): fn()
        tf = time_fn(fwd, warmup=3, reps=20, device=dev).median_ms
        tb = time_fn(lambda: torch.autograd.grad(fn(), (q, k, v), go), warmup=2, reps=10, device=dev).median_ms
        core[name] = dict(fwd_ms=tf, fwdbwd_ms=tb, useful_tflops_fwd=local_core_flops(N, W, 8, 64, 2) / tf / 1e9,
                          useful_tflops_fwdbwd=local_core_flops(N, W, 8, 64, 2, backward=True) / tb / 1e9)
        print('core', name, core[name], flush=True)
    extra['core_65536'] = core; del q, k, v, go; dump()
    print(f'ceiling {extra["matmul_bf16_tflops"]:.0f} TFLOP/s, copy {extra["copy_tb_s"]:.2f} TB/s', flush=True)


def sec_sweep():
    global rows
    # 3. the sweep, saved after every length
    rows = []
    for n in (1024, 2048, 4096, 8192, 16384, 32768, 65536, 131072):
        impls = ['mha', 'sdpa', 'banded', 'msa', 'msa_flex'] + (['msa_compiled', 'msa_flex_compiled'] if n in (4096, 16384, 65536, 131072) else [])
        rows += sweep(impls, (n,), GPU_CONFIG, dev, backward=True, warmup=2, reps=10, memory=True, verbose=True, max_gib=30)
        save_rows(rows, os.path.join(OUT, 'bench_gpu.csv'))
        print(f'--- N={n} done at {time.time() - t_start:.0f} s', flush=True)
    for mode in ('fwd', 'fwd+bwd'):
        print(ratio_table(rows, 'sdpa', 'msa_flex', mode))
        for tgt in ('msa', 'msa_flex', 'msa_flex_compiled'):
            ns, f = _series(rows, tgt, mode); _, s = _series(rows, 'sdpa', mode)
            if len(ns) == len(s): print(f'crossover {tgt} vs sdpa ({mode}): {crossover(ns, f, s)}')
    print(f'total {time.time() - t_start:.0f} s')


import traceback
rows = []
for f in (sec_correctness, sec_core, sec_sweep):
    try: f()
    except Exception: traceback.print_exc(); print('SECTION FAILED', f.__name__, flush=True)
    torch.cuda.empty_cache()
