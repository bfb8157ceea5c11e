"""Where the fused routed layer spends its time on the GPU: each stage of `fused_routed_forward` timed on its own (forward,
bf16, one causal layer d 512, 8 heads of 64, W 256, P 64, k 4), the host time of a whole call, and the CUDA kernels of a
forward + backward by device time (torch.profiler).

PYTHONUNBUFFERED=1 python3 scripts/gpu_routed_stages.py [N ...]  -> $OUT/routed_stages.json (copied to data/ afterwards)
"""
import datetime, json, os, sys, time
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import torch
import torch.nn.functional as F
from einops import rearrange
from msa_nb.bench import time_fn, _device_name
from msa_nb.layer import MSAttention, apply_rope
from msa_nb.flex import flex_local_attention, BlockMask, fused_flex, pad_to, divisible
from msa_nb.chunk_memory import pool_chunks
from msa_nb.flex_compressed import flex_compressed_attention
from msa_nb.flex_routed import (routed_block_scores, kernel_block_scores, selected_tiles, _selected_block_mask, _flex_selected,
                                _top_chunks, selected_mask_mod, fused_routed_forward, _pool)

OUT = os.environ.get('OUT', '/tmp'); dev = torch.device('cuda')
NS = [int(a) for a in sys.argv[1:]] or [8192, 65536]
res = dict(device=_device_name(dev), torch=torch.__version__, date=datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ'),
           command='python3 scripts/gpu_routed_stages.py ' + ' '.join(map(str, NS)),
           cfg=dict(B=1, d_model=512, heads=8, D=64, window=256, P=64, top_k=4, causal=True, dtype='bfloat16'), stages={}, host={}, kernels={})
def dump(): json.dump(res, open(os.path.join(OUT, 'routed_stages.json'), 'w'), indent=1)
torch.manual_seed(0)
lay = MSAttention(512, 8, 256, 8, causal=True, rope=True, memory='routed', chunk=64, top_k=4).to(dev, torch.bfloat16)
mem, P = lay.memory, 64

def old_mask(idx, n):
    "The previous construction: a dense (B, NT, NT) tile picture, an argsort, and BlockMask.from_kv_blocks."
    sel = selected_tiles(idx, P, 128); NT = sel.shape[1]
    num = sel.sum(-1).to(torch.int32)[:, None]
    ind = torch.argsort((~sel).to(torch.int8), dim=-1, stable=True).to(torch.int32)[:, None]
    return BlockMask.from_kv_blocks(num, ind, BLOCK_SIZE=128, mask_mod=selected_mask_mod(idx, P, n), seq_lengths=(NT * 128, NT * 128))

for N in NS:
    with torch.no_grad():
        x = torch.randn(1, N, 512, device=dev, dtype=torch.bfloat16)
        q, k, v = (t.contiguous() for t in rearrange(lay.qkv(x), 'b n (three h d) -> three b h n d', three=3, h=8))
        ql, kl = apply_rope(q, lay.rope_base), apply_rope(k, lay.rope_base)
        pooled = _pool(k, v, P)
        cmp, lse = flex_compressed_attention(q, k, v, P, True, pooled=pooled, return_lse=True)
        s = kernel_block_scores(q, pooled.k, pooled.valid, P, True, lse)
        idx = _top_chunks(s, 4, True)
        loc = flex_local_attention(ql, kl, v, 256, True)
        sel = _flex_selected(ql, kl, v, idx, P)
        bm = _selected_block_mask(idx, P, N, None, 128)
        L = bm.seq_lengths[0]
        qp, kp, vp = (pad_to(t, L) for t in (ql, kl, v))
        stages = dict(
            projection=lambda: [t.contiguous() for t in rearrange(lay.qkv(x), 'b n (three h d) -> three b h n d', three=3, h=8)],
            rope=lambda: (apply_rope(q, lay.rope_base), apply_rope(k, lay.rope_base)),
            local=lambda: flex_local_attention(ql, kl, v, 256, True),
            pool=lambda: _pool(k, v, P),
            compressed_lse=lambda: flex_compressed_attention(q, k, v, P, True, pooled=pooled, return_lse=True),
            compressed=lambda: flex_compressed_attention(q, k, v, P, True, pooled=pooled),
            scores_slab_softmax=lambda: routed_block_scores(q, pooled.k, pooled.valid, P, True),
            scores_kernel=lambda: kernel_block_scores(q, pooled.k, pooled.valid, P, True, lse),
            topk=lambda: _top_chunks(s, 4, True),
            mask_lists=lambda: _selected_block_mask(idx, P, N, None, 128),
            mask_dense_old=lambda: old_mask(idx, N),
            selected_kernel=lambda: fused_flex(qp, kp, vp, bm, divisible(None, 128)),
            selected_branch=lambda: _flex_selected(ql, kl, v, idx, P),
            gate_mix_out=lambda: lay.out(rearrange(mem.mix([loc, cmp, sel], lay.gate(x)), 'b h n d -> b n (h d)')),
            fused_layer=lambda: fused_routed_forward(lay, x),
            sdpa_core=lambda: F.scaled_dot_product_attention(ql, kl, v, is_causal=True),
        )
        row = {}
        for name, f in stages.items():
            if name == 'scores_slab_softmax' and N > 65536: continue
            t = time_fn(f, warmup=2, reps=7, device=dev); row[name] = t.median_ms
            print(f'N={N} {name:22s} {t.median_ms:9.3f} ms', flush=True)
        res['stages'][str(N)] = row; dump()
        # host time: how long Python takes to enqueue one forward (the GPU idle before it)
        hs = []
        for _ in range(7):
            torch.cuda.synchronize(); t0 = time.perf_counter(); fused_routed_forward(lay, x); hs.append((time.perf_counter() - t0) * 1e3)
        torch.cuda.synchronize(); res['host'][str(N)] = sorted(hs)[3]; print(f'N={N} host ms per forward {sorted(hs)[3]:.3f}', flush=True)
    # kernels of a forward + backward, by device time
    xg = torch.randn(1, N, 512, device=dev, dtype=torch.bfloat16, requires_grad=True); gy = torch.randn_like(xg)
    params = [p for p in lay.parameters()]
    step = lambda: torch.autograd.grad(fused_routed_forward(lay, xg), [xg] + params, gy, allow_unused=True)
    for _ in range(2): step()
    torch.cuda.synchronize()
    from torch.profiler import profile, ProfilerActivity
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        for _ in range(3): step()
        torch.cuda.synchronize()
    ev = prof.key_averages()
    dt = lambda e: getattr(e, 'device_time_total', None) or getattr(e, 'cuda_time_total', 0)
    ker = sorted(((e.key, dt(e) / 3e3, e.count // 3) for e in ev if dt(e) > 0 and getattr(e, 'device_type', None) is not None and 'CUDA' in str(e.device_type)),
                 key=lambda r: -r[1])
    if not ker: ker = sorted(((e.key, dt(e) / 3e3, e.count // 3) for e in ev if dt(e) > 0), key=lambda r: -r[1])
    res['kernels'][str(N)] = [dict(name=n[:120], ms_per_step=m, calls_per_step=c) for n, m, c in ker[:30]]
    print(f'N={N} fwd+bwd kernels (ms per step):'); [print(f'  {m:8.3f} x{c:<4d} {n[:110]}') for n, m, c in ker[:30]]
    dump()
print('done')
