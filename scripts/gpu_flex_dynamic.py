"""Does keeping FlexAttention fused for every length (chapter 3b: automatic dynamic shapes) cost kernel speed?

A/B on the GPU: the same sliding-window call through `fused_flex` (symbolic N after two warm-up lengths) and through
a kernel compiled for exactly that shape (`torch.compile(flex_attention, dynamic=False)`), bf16, B 2, 8 heads of 64,
W 256, forward and forward + backward, medians of 20 calls after warm-up (CUDA events). Each contender runs in its own
process (both compile the same function, and torch would otherwise share their cached graphs), one after the other:

python3 scripts/gpu_flex_dynamic.py dynamic && python3 scripts/gpu_flex_dynamic.py static
    -> $OUT/flex_dynamic_ab.json, both contenders' rows (copied to data/ afterwards)
"""
import datetime, json, os, sys
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import torch
import torch._dynamo
from torch.nn.attention.flex_attention import flex_attention
from msa_nb.bench import time_fn, _device_name
from msa_nb.flex import band_block_mask, fused_flex, flex_graph_count

OUT = os.environ.get('OUT', '/tmp'); dev = torch.device('cuda')
which = sys.argv[1]; assert which in ('dynamic', 'static'), which
torch._dynamo.config.recompile_limit = 64                                       # the static contender: one graph per shape
static = torch.compile(flex_attention, dynamic=False)
path = os.path.join(OUT, 'flex_dynamic_ab.json')
res = json.load(open(path)) if os.path.exists(path) else dict(device=_device_name(dev), torch=torch.__version__, cfg=dict(B=2, heads=8, D=64, W=256, dtype='bfloat16'),
           date=datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ'),
           command='python3 scripts/gpu_flex_dynamic.py dynamic && python3 scripts/gpu_flex_dynamic.py static', rows=[])
for n in ((3000, 5000) if which == 'dynamic' else ()):                         # two lengths: fused_flex turns symbolic
    q = torch.randn(2, 8, n, 64, device=dev, dtype=torch.bfloat16)
    with torch.no_grad(): fused_flex(q, q, q, band_block_mask(n, 256, False, dev))
    qg = q.clone().requires_grad_(True); fused_flex(qg, qg, qg, band_block_mask(n, 256, False, dev)).sum().backward()
for n in (16384, 65536, 65000, 262144):
    x = [torch.randn(2, 8, n, 64, device=dev, dtype=torch.bfloat16, requires_grad=True) for _ in range(3)]
    go = torch.randn(2, 8, n, 64, device=dev, dtype=torch.bfloat16); bm = band_block_mask(n, 256, False, dev)
    name, f = (('dynamic (fused_flex)', lambda *a: fused_flex(*a, bm)) if which == 'dynamic' else
               ('static (dynamic=False)', lambda *a: static(*a, block_mask=bm)))
    def fwd():
        with torch.no_grad(): return f(*x)
    def fb(): return torch.autograd.grad(f(*x), x, go)
    for mode, fn in (('fwd', fwd), ('fwd+bwd', fb)):
        t = time_fn(fn, warmup=3, reps=20, device=dev)
        r = dict(N=n, kernel=name, mode=mode, median_ms=t.median_ms, q1_ms=t.q1_ms, q3_ms=t.q3_ms, reps=20)
        res['rows'].append(r); print(r, flush=True)
    res[f'graphs_{which}'] = flex_graph_count(); json.dump(res, open(path, 'w'), indent=1)
    del x, go
