"""Second GPU run of chapter 10: the crossover region, with CUDA graphs (msa_flex_cg), all layers measured in this run."""
import os, sys, time
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import torch
from msa_nb.bench import GPU_CONFIG, sweep, save_rows, ratio_table, crossover, _series
OUT = os.environ.get('OUT', '/tmp'); dev = torch.device('cuda'); t0 = time.time(); rows = []
for n in (2048, 4096, 8192, 16384, 65536):
    impls = ['sdpa', 'msa_flex', 'msa_flex_compiled', 'msa_flex_cg']
    try:
        rows += sweep(impls, (n,), GPU_CONFIG, dev, backward=True, warmup=3, reps=20, memory=False, verbose=True)
    except Exception as e:
        import traceback; traceback.print_exc()
        rows += sweep(impls[:3], (n,), GPU_CONFIG, dev, backward=True, warmup=3, reps=20, memory=False, verbose=True)
    for r in rows: r['run'] = 'crossover'
    save_rows(rows, os.path.join(OUT, 'bench_gpu_cross.csv')); print(f'--- N={n} at {time.time()-t0:.0f}s', flush=True)
for mode in ('fwd', 'fwd+bwd'):
    print(ratio_table(rows, 'sdpa', 'msa_flex_cg', mode))
    for tgt in ('msa_flex', 'msa_flex_compiled', 'msa_flex_cg'):
        ns, f = _series(rows, tgt, mode); _, s = _series(rows, 'sdpa', mode)
        if len(ns) == len(s): print(f'crossover {tgt} vs sdpa ({mode}): {crossover(ns, f, s)}')
