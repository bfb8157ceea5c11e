"""What a new shape costs each SDPA backend on this GPU: the first forward + backward at a shape never seen before
against the median of the calls after it, for the two shapes this course feeds SDPA (chapter 10's dense layer,
(B, H, N, D), and chapter 13b's gathered selected branch, (B, H N/P, P, D) queries against (B, H N/P, k P, D) keys),
bf16, per backend: the default choice, cuDNN, flash, memory-efficient. Each backend gets lengths of its own, so every
first call is a first for that shape in the process. Chapter 13b reads the stored result.

PYTHONUNBUFFERED=1 python3 scripts/gpu_sdpa_shapes.py   -> $OUT/sdpa_new_shape.json (copied to data/ afterwards)
"""
import datetime, json, os, statistics, sys, time
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import torch
import torch.nn.functional as F
from torch.nn.attention import sdpa_kernel, SDPBackend

dev = torch.device('cuda'); OUT = os.environ.get('OUT', '/tmp')
B, H, D, P, K = 2, 8, 64, 64, 4
BACKENDS = dict(default=None, cudnn=[SDPBackend.CUDNN_ATTENTION], flash=[SDPBackend.FLASH_ATTENTION],
                efficient=[SDPBackend.EFFICIENT_ATTENTION])

def step(q, k, v, backends):
    "One forward + backward of SDPA under `backends` (None: torch's own choice)."
    if backends is None: o = F.scaled_dot_product_attention(q, k, v)
    else:
        with sdpa_kernel(backends): o = F.scaled_dot_product_attention(q, k, v)
    torch.autograd.grad(o.sum(), (q, k, v))

def ms(f):
    torch.cuda.synchronize(); t = time.perf_counter(); f(); torch.cuda.synchronize(); return (time.perf_counter() - t) * 1e3

def shapes(kind, n):
    if kind == 'dense': return (B, H, n, D), (B, H, n, D)                       # chapter 10's SDPALayer
    nb = -(-n // P); return (B, H * nb, P, D), (B, H * nb, K * P, D)             # chapter 13b's gathered branch

rows = []
step(*(torch.randn(1, 1, 128, D, device=dev, dtype=torch.bfloat16, requires_grad=True) for _ in range(3)), None)  # CUDA context, cuBLAS
for bi, (name, backends) in enumerate(BACKENDS.items()):
    for kind in ('gathered', 'dense'):
        for j, base in enumerate((3000, 7000, 12000, 24000, 40000)):
            n = base + 64 * (7 * bi + 1) + (5 if kind == 'dense' else 0) + 2 * j   # lengths of this backend alone
            qs, ks = shapes(kind, n)
            q = torch.randn(qs, device=dev, dtype=torch.bfloat16, requires_grad=True)
            k, v = (torch.randn(ks, device=dev, dtype=torch.bfloat16, requires_grad=True) for _ in range(2))
            try:
                first = ms(lambda: step(q, k, v, backends))
                later = statistics.median(ms(lambda: step(q, k, v, backends)) for _ in range(5))
                r = dict(backend=name, kind=kind, N=n, q=list(qs), k=list(ks), first_ms=first, later_ms=later)
            except RuntimeError as ex: r = dict(backend=name, kind=kind, N=n, q=list(qs), k=list(ks), error=repr(ex)[:200])
            rows.append(r); print(r, flush=True)
res = dict(device=torch.cuda.get_device_name(dev), torch=torch.__version__, cudnn=torch.backends.cudnn.version(),
           date=datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ'),
           command='python3 scripts/gpu_sdpa_shapes.py', cfg=dict(B=B, H=H, D=D, P=P, k=K, dtype='bfloat16', mode='fwd+bwd'), rows=rows)
json.dump(res, open(os.path.join(OUT, 'sdpa_new_shape.json'), 'w'), indent=1)
for name in BACKENDS:
    for kind in ('gathered', 'dense'):
        rs = [r for r in rows if r['backend'] == name and r['kind'] == kind and 'first_ms' in r]
        if rs: print(f"{name:>9} {kind:>8}: first call minus later, median over {len(rs)} new shapes: "
                     f"{statistics.median(r['first_ms'] - r['later_ms'] for r in rs):8.1f} ms")
