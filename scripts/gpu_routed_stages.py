"""Where the fused routed layer spends its time on the GPU: each stage of `fused_routed_forward` timed on its own (forward,
bf16, d 512, 8 heads of 64, W 256, P 64, k 4) in chapter 10's config (B 2, non-causal, no rotary positions) and the causal
one (B 1, rotary positions), the host time of a whole call, and the CUDA kernels of a forward + backward by device time.

BUDGET_S=40 PYTHONUNBUFFERED=1 python3 scripts/gpu_routed_stages.py [N ...]  -> $OUT/routed_stages.json (copied to data/ afterwards)
"""
import datetime, json, os, sys, time
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import torch
import torch.nn.functional as F
from einops import rearrange
from msa_nb.bench import time_fn, _device_name
from msa_nb.layer import MSAttention, apply_rope
from msa_nb.flex import flex_local_attention, fused_flex, pad_to, divisible
from msa_nb.flex_compressed import flex_compressed_attention
from msa_nb.flex_routed import (kernel_block_scores, _selected_block_mask, _flex_selected, _gather_selected, _top_chunks,
                                fused_routed_forward, _pool, _glue, _rope_qk, _mix_heads)

OUT = os.environ.get('OUT', '/tmp'); dev = torch.device('cuda'); T0 = time.time(); BUDGET = float(os.environ.get('BUDGET_S', 120))
NS = [int(a) for a in sys.argv[1:]] or [65536]
CFGS = dict(ch10=dict(B=2, causal=False, rope=False), causal=dict(B=1, causal=True, rope=True))
res = dict(device=_device_name(dev), torch=torch.__version__, date=datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ'),
           command=f'BUDGET_S={BUDGET:g} python3 scripts/gpu_routed_stages.py ' + ' '.join(map(str, NS)),
           cfg=dict(d_model=512, heads=8, D=64, window=256, P=64, top_k=4, dtype='bfloat16', configs=CFGS), stages={}, host={}, kernels={})
def dump(): json.dump(res, open(os.path.join(OUT, 'routed_stages.json'), 'w'), indent=1)
def profile_step(lay, B, N, key):
    "The CUDA kernels of a forward + backward by device time (torch.profiler), top 20."
    xg = torch.randn(B, N, 512, device=dev, dtype=torch.bfloat16, requires_grad=True); gy = torch.randn_like(xg)
    params = list(lay.parameters())
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
    res['kernels'][key] = [dict(name=n[:120], ms_per_step=m, calls_per_step=cnt) for n, m, cnt in ker[:20]]
    print(f'{key} fwd+bwd kernels (ms per step):'); [print(f'  {m:8.3f} x{cnt:<4d} {n[:100]}') for n, m, cnt in ker[:12]]
    dump()

P = 64
for cname, c in CFGS.items():
    torch.manual_seed(0)
    lay = MSAttention(512, 8, 256, 8, causal=c['causal'], rope=c['rope'], memory='routed', chunk=P, top_k=4).to(dev, torch.bfloat16).eval()
    mem, causal, B = lay.memory, c['causal'], c['B']
    for N in NS:
        key = f'{cname} {N}'
        with torch.no_grad():
            x = torch.randn(B, N, 512, device=dev, dtype=torch.bfloat16)
            q, k, v = (t.contiguous() for t in lay.project(x))
            ql, kl = _rope_qk(q, k, lay.rope_base) if c['rope'] else (q, k)
            pooled = _pool(k, v, P)
            cmp, lse = flex_compressed_attention(q, k, v, P, causal, pooled=pooled, return_lse=True)
            s = kernel_block_scores(q, pooled.k, pooled.valid, P, causal, lse)
            idx = _top_chunks(s, 4, causal)
            loc = flex_local_attention(ql, kl, v, 256, causal)
            sel = _gather_selected(ql, kl, v, idx, P, full=not causal)
            g = lay.gate(x)
            bm = _selected_block_mask(idx, P, N, None, 128)
            qp, kp, vp = (pad_to(t, bm.seq_lengths[0]) for t in (ql, kl, v))
            stages = dict(
                projection=lambda: [t.contiguous() for t in lay.project(x)],
                rope_eager=lambda: _rope_qk(q, k, lay.rope_base),
                rope_compiled=lambda: _glue(_rope_qk, True, q, k, lay.rope_base),
                local=lambda: flex_local_attention(ql, kl, v, 256, causal),
                pool=lambda: _pool(k, v, P),
                compressed_lse=lambda: flex_compressed_attention(q, k, v, P, causal, pooled=pooled, return_lse=True),
                scores_kernel=lambda: kernel_block_scores(q, pooled.k, pooled.valid, P, causal, lse),
                topk=lambda: _top_chunks(s, 4, causal),
                mask_lists=lambda: _selected_block_mask(idx, P, N, None, 128),
                selected_flex_kernel=lambda: fused_flex(qp, kp, vp, bm, divisible(None, 128)),
                selected_flex=lambda: _flex_selected(ql, kl, v, idx, P),
                selected_gather=lambda: _gather_selected(ql, kl, v, idx, P, full=not causal),
                gate_mix_out_eager=lambda: lay.out(rearrange(mem.mix([loc, cmp, sel], lay.gate(x)), 'b h n d -> b n (h d)')),
                gate_mix_out=lambda: lay.out(_glue(_mix_heads, True, [loc, cmp, sel], lay.gate(x))),
                fused_layer_flex=lambda: fused_routed_forward(lay, x, selected='flex'),
                fused_layer_gather=lambda: fused_routed_forward(lay, x, selected='gather'),
                sdpa_core=lambda: F.scaled_dot_product_attention(ql, kl, v, is_causal=causal),
            )
            row = {}
            for name, f in stages.items():
                if time.time() - T0 > BUDGET: break
                if name.startswith('rope') and not c['rope']: continue
                try: t = time_fn(f, warmup=2, reps=7, device=dev); row[name] = t.median_ms
                except Exception as ex: row[name] = None; print(f'{key} {name}: {ex!r}'[:300], flush=True); continue
                print(f'{key} {name:22s} {t.median_ms:9.3f} ms', flush=True)
            res['stages'][key] = row; dump()
            hs = []                                                            # host time: how long Python takes to enqueue one forward
            for _ in range(7):
                torch.cuda.synchronize(); t0 = time.perf_counter(); fused_routed_forward(lay, x); hs.append((time.perf_counter() - t0) * 1e3)
            torch.cuda.synchronize(); res['host'][key] = sorted(hs)[3]; print(f'{key} host ms per forward (gather) {sorted(hs)[3]:.3f}', flush=True); dump()
        if time.time() - T0 > BUDGET: continue
        try: profile_step(lay, B, N, key)
        except Exception as ex: print(f'{key} profiler: {ex!r}'[:300], flush=True)
res['wall_s'] = round(time.time() - T0, 1); dump()
print('done', res['wall_s'])

