"""Where the routed layer's long steps in the variable-length workload go: `mixed_lengths('msa_routed')`'s lengths
(same seed), one forward + backward each, every step under cProfile; for each step the wall time, the new FlexAttention
graphs, the new Dynamo frames and what the host spent in compiling; the slow steps' top functions printed; each slow
length run a second time (a one-off cost is gone the second time). Run with TORCH_LOGS=recompiles to see the guards.

PYTHONUNBUFFERED=1 TORCH_LOGS=recompiles python3 scripts/gpu_mixed_stalls.py   -> $OUT/mixed_stalls.json
The stored data/mixed_stalls.json adds one key by hand, `guards`: the guard line of each slow step, copied from the log.
"""
import cProfile, datetime, io, json, os, pstats, random, sys, time
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import torch
from torch._dynamo.utils import counters
from msa_nb.bench import make_layer, GPU_CONFIG
from msa_nb.flex import flex_graph_count

OUT = os.environ.get('OUT', '/tmp'); dev = torch.device(os.environ.get('DEVICE', 'cuda')); cfg = GPU_CONFIG
IMPL, K, LO, HI, SLOW_MS = os.environ.get('IMPL', 'msa_routed'), 32, 1000, int(os.environ.get('HI', 65536)), 300  # HI, DEVICE: a CPU smoke run
ns = random.Random(0).sample(range(LO, HI + 1), K + 2)                          # as mixed_lengths(seed=0) draws them
torch.manual_seed(0)
m = make_layer(IMPL, cfg, dev).train(True)
params, dt = [p for p in m.parameters() if p.requires_grad], getattr(torch, cfg['dtype'])

sync = torch.cuda.synchronize if dev.type == 'cuda' else (lambda: None)

def step(n):
    x = torch.randn(cfg['B'], n, cfg['d_model'], device=dev, dtype=dt, requires_grad=True)   # (B, N, d_model)
    torch.autograd.grad(m(x), [x] + params, torch.randn_like(x))

rows = []
for i, n in enumerate(ns):
    g0, f0, pr = flex_graph_count(), dict(counters['stats']), cProfile.Profile()
    sync(); t0 = time.perf_counter()
    pr.enable(); step(n); sync(); pr.disable()
    ms = (time.perf_counter() - t0) * 1e3
    st = pstats.Stats(pr); tot = {}
    for (file, line, fn), (cc, nc, tt, ct, callers) in st.stats.items():
        for key in ('compile_fx', 'triton/compiler/compiler.py', 'autotune', 'cudnn', '_dynamo/convert_frame', 'codecache'):
            if key in file or key in fn: tot[key] = max(tot.get(key, 0), ct * 1e3)
    row = dict(i=i, N=n, warmup=i < 2, ms=round(ms, 1), new_flex_graphs=flex_graph_count() - g0,
               new_stats={k: v - f0.get(k, 0) for k, v in counters['stats'].items() if v != f0.get(k, 0)},
               compile_ms={k: round(v, 1) for k, v in tot.items()})
    prof = None
    if ms > SLOW_MS:
        s = io.StringIO(); pstats.Stats(pr, stream=s).sort_stats('cumulative').print_stats(25); prof = s.getvalue()[-6000:]
        sync(); t0 = time.perf_counter(); step(n); sync()
        row['again_ms'] = round((time.perf_counter() - t0) * 1e3, 1)
    rows.append(row); print(row, flush=True)
    if prof: print(prof, flush=True)                                              # printed, not stored
json.dump(dict(device=torch.cuda.get_device_name() if dev.type == 'cuda' else 'cpu', torch=torch.__version__, impl=IMPL, cfg=cfg,
               date=datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ'),
               command='PYTHONUNBUFFERED=1 TORCH_LOGS=recompiles python3 scripts/gpu_mixed_stalls.py', rows=rows),
          open(os.path.join(OUT, 'mixed_stalls.json'), 'w'), indent=1)
