"""GPU probe for msa_nb.flex (run on the device machine): correctness of the fused path, kernel options, layer variants.

python scripts/gpu_probe.py  -> prints tables; writes $OUT/probe.json
"""
import json, math, os, sys, time, traceback
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import torch, torch.nn as nn, torch.nn.functional as F
import torch._dynamo
torch._dynamo.config.cache_size_limit = 64
from msa_nb.chunked import chunked_attention
from msa_nb.flex import flex_local_attention, local_attention, _flex_suits
from msa_nb.layer import MSAttention

dev = torch.device('cuda'); res = {'device': torch.cuda.get_device_name(), 'torch': torch.__version__}
print(res, flush=True)

def rel(a, b): return ((a.double() - b.double()).norm() / b.double().norm()).item()

def ms(fn, reps=20, warm=3):
    for _ in range(warm): fn()
    torch.cuda.synchronize()
    s = [torch.cuda.Event(enable_timing=True) for _ in range(reps)]; e = [torch.cuda.Event(enable_timing=True) for _ in range(reps)]
    for i in range(reps): s[i].record(); fn(); e[i].record()
    torch.cuda.synchronize()
    t = sorted(a.elapsed_time(b) for a, b in zip(s, e)); return t[reps // 2]

# 1. correctness
t0 = time.time(); corr = []
torch.manual_seed(0)
for N, W, causal, pad, D in ((4096, 256, False, None, 64), (3001, 256, True, None, 64), (2500, 64, False, 0.3, 64),
                             (1000, 128, True, 0.5, 64), (777, 100, False, 0.2, 32), (65536, 256, False, None, 64)):
    q, k, v = (torch.randn(2, 8, N, D, device=dev, dtype=torch.bfloat16, requires_grad=True) for _ in range(3))
    kpm = None if pad is None else torch.rand(2, N, device=dev) < pad
    if kpm is not None: kpm[1, : N // 2] = True
    go = torch.randn(2, 8, N, D, device=dev, dtype=torch.bfloat16)
    out = torch.full_like(q, float('nan')).detach()
    o = local_attention(q, k, v, W, causal, kpm)
    g = torch.autograd.grad(o, (q, k, v), go)
    q32, k32, v32 = (t.detach().float().requires_grad_(True) for t in (q, k, v))
    r = chunked_attention(q32, k32, v32, W, causal, kpm)
    gr = torch.autograd.grad(r, (q32, k32, v32), go.float())
    errs = [rel(o, r)] + [rel(a, b) for a, b in zip(g, gr)]
    fin = bool(torch.isfinite(o).all()) and all(bool(torch.isfinite(x).all()) for x in g)
    corr.append(dict(N=N, W=W, causal=causal, pad=pad, D=D, out=errs[0], dq=errs[1], dk=errs[2], dv=errs[3], finite=fin))
    print(corr[-1], flush=True)
# fp32 inputs through flex
q = torch.randn(1, 4, 1500, 64, device=dev)
with torch.no_grad(): e32 = rel(flex_local_attention(q, q, q, 100, True), chunked_attention(q.double(), q.double(), q.double(), 100, True))
print('fp32 flex vs fp64 chunked', e32); res['fp32_rel'] = e32
res['correctness'] = corr; print('correctness s', time.time() - t0, flush=True)

# 2. ceilings
a = torch.randn(8192, 8192, device=dev, dtype=torch.bfloat16); b = torch.randn(8192, 8192, device=dev, dtype=torch.bfloat16)
t = ms(lambda: a @ b, reps=10); res['matmul_tflops'] = 2 * 8192**3 / t / 1e9; print('matmul TFLOP/s', res['matmul_tflops'], flush=True)
del a, b

# 3. local core at 65536: kernel options
N, W, B, H, D = 65536, 256, 2, 8, 64
useful = 4 * B * H * D * sum(min(i + W, N - 1) - max(i - W, 0) + 1 for i in range(N))
res['useful_flops_fwd'] = useful
q, k, v = (torch.randn(B, H, N, D, device=dev, dtype=torch.bfloat16, requires_grad=True) for _ in range(3))
go = torch.randn_like(q)
core = {}
def fb(fn):
    def f():
        o = fn(); torch.autograd.grad(o, (q, k, v), go)
    return f
variants = {'default': None,
            'm128n64w4s3': dict(BLOCK_M=128, BLOCK_N=64, num_warps=4, num_stages=3),
            'm128n128w8s2': dict(BLOCK_M=128, BLOCK_N=128, num_warps=8, num_stages=2),
            'm64n64w4s3': dict(BLOCK_M=64, BLOCK_N=64, num_warps=4, num_stages=3)}
for name, ko in variants.items():
    try:
        t0 = time.time()
        f = lambda: flex_local_attention(q, k, v, W, kernel_options=ko)
        with torch.no_grad(): tf = ms(f)
        tb = ms(fb(f), reps=10)
        core[name] = (tf, tb); print(f'flex {name}: fwd {tf:.3f} fwd+bwd {tb:.3f} ms  TFLOP/s {useful/tf/1e9:.0f} / {3.5*useful/tb/1e9:.0f}  ({time.time()-t0:.0f}s)', flush=True)
    except Exception as ex:
        print('variant', name, 'failed', repr(ex)[:300], flush=True)
for bs in (64, 256):
    try:
        f = lambda: flex_local_attention(q, k, v, W, block_size=bs)
        with torch.no_grad(): tf = ms(f)
        tb = ms(fb(f), reps=10)
        core[f'bs{bs}'] = (tf, tb); print(f'flex block {bs}: fwd {tf:.3f} fwd+bwd {tb:.3f}', flush=True)
    except Exception as ex: print('bs', bs, 'failed', repr(ex)[:300], flush=True)
f = lambda: F.scaled_dot_product_attention(q, k, v)
with torch.no_grad(): tf = ms(f, reps=5)
tb = ms(fb(f), reps=5); core['sdpa'] = (tf, tb); print(f'dense sdpa core: fwd {tf:.3f} fwd+bwd {tb:.3f}', flush=True)
f = lambda: chunked_attention(q, k, v, W)
with torch.no_grad(): tf = ms(f, reps=5)
tb = ms(fb(f), reps=5); core['chunked'] = (tf, tb); print(f'chunked core: fwd {tf:.3f} fwd+bwd {tb:.3f}', flush=True)
res['core'] = core
del q, k, v, go

# 4. layers at 65536
class Dense(nn.Module):
    def __init__(s, d, h):
        super().__init__(); s.h = h; s.qkv = nn.Linear(d, 3 * d); s.out = nn.Linear(d, d)
    def forward(s, x):
        B, N, d = x.shape
        q, k, v = s.qkv(x).view(B, N, 3, s.h, d // s.h).permute(2, 0, 3, 1, 4)
        return s.out(F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(B, N, d))
torch.manual_seed(0)
x = torch.randn(2, N, 512, device=dev, dtype=torch.bfloat16, requires_grad=True)
gx = torch.randn_like(x)
lay = {}
def mk(kind):
    if kind == 'sdpa': return Dense(512, 8).to(dev, torch.bfloat16).eval()
    m = MSAttention(512, 8, 256, 64, local_attn=chunked_attention if kind.startswith('msa_chunked') else None).to(dev, torch.bfloat16).eval()
    return torch.compile(m, dynamic=False) if kind.endswith('compiled') else m
for kind in ('sdpa', 'msa_chunked', 'msa_flex', 'msa_flex_compiled', 'msa_chunked_compiled'):
    try:
        t0 = time.time(); m = mk(kind)
        with torch.no_grad(): tf = ms(lambda: m(x), reps=10)
        tb = ms(lambda: torch.autograd.grad(m(x), [x] + list(m.parameters()), gx), reps=10)
        lay[kind] = (tf, tb); print(f'layer {kind}: fwd {tf:.3f} fwd+bwd {tb:.3f} ms ({time.time()-t0:.0f}s)', flush=True)
    except Exception as ex:
        print('layer', kind, 'failed', repr(ex)[:500], flush=True); traceback.print_exc()
res['layers'] = lay
if 'sdpa' in lay:
    for kk, (tf, tb) in lay.items(): print(f'{kk:22s} fwd {tf:8.3f} ({lay["sdpa"][0]/tf:5.1f}x)  fwd+bwd {tb:8.3f} ({lay["sdpa"][1]/tb:5.1f}x)')
json.dump(res, open(os.path.join(os.environ.get('OUT', '/tmp'), 'probe.json'), 'w'), indent=1)
