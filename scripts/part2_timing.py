"""Time one attention layer on the CPU, forward, as N grows (chapter 13): dense SDPA attention, Part I's MSA layer
(memory='bank'), and the Part II layers (memory='chunks', 'routed'); medians after warm-up, all in one run.

    python scripts/part2_timing.py data/part2_timing.json [--max-n 65536] [--threads 2]

Writes only the output path given."""
import argparse, json, os, platform, sys, time
import torch
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from msa_nb.bench import time_fn, SDPALayer
from msa_nb.layer import MSAttention

if __name__ == '__main__':
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('out'); p.add_argument('--max-n', type=int, default=65536); p.add_argument('--threads', type=int, default=2)
    p.add_argument('--dense-max-n', type=int, default=65536, help='largest N for dense attention')
    a = p.parse_args()
    torch.set_num_threads(a.threads); torch.manual_seed(0)
    cfg = dict(B=1, d_model=128, heads=4, W=64, K=32, chunk=64, top_k=4, dtype='float32')
    d, H = cfg['d_model'], cfg['heads']
    layers = {'dense (SDPA)': SDPALayer(d, H), 'MSA bank (Part I)': MSAttention(d, H, cfg['W'], cfg['K'], rope=True),
              'MSA chunks': MSAttention(d, H, cfg['W'], cfg['K'], rope=True, memory='chunks', chunk=cfg['chunk']),
              'MSA routed': MSAttention(d, H, cfg['W'], cfg['K'], rope=True, memory='routed', chunk=cfg['chunk'], top_k=cfg['top_k'])}
    for m in layers.values(): m.eval()
    rows, load0, t0 = [], os.getloadavg(), time.time()
    n = 1024
    while n <= a.max_n:
        x = torch.randn(cfg['B'], n, d)                                          # (B, N, d_model)
        for name, m in layers.items():
            if name.startswith('dense') and n > a.dense_max_n: continue
            reps = 7 if n <= 8192 else 3
            with torch.no_grad(): t = time_fn(m, x, warmup=1, reps=reps)
            rows.append({'impl': name, 'N': n, 'median_ms': round(t.median_ms, 3), 'q1_ms': round(t.q1_ms, 3), 'q3_ms': round(t.q3_ms, 3), 'reps': reps})
            print(f"N={n:>6} {name:<20} {t.median_ms:10.1f} ms", file=sys.stderr, flush=True)
        n *= 2
    meta = {**cfg, 'threads': torch.get_num_threads(), 'torch': torch.__version__, 'mode': 'forward, no grad',
            'machine': f'{platform.machine()} {platform.system()}, {os.cpu_count()} cpus', 'processor': platform.processor(),
            'load_before': [round(x, 2) for x in load0], 'load_after': [round(x, 2) for x in os.getloadavg()],
            'total_s': round(time.time() - t0, 1), 'date': time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}
    with open(a.out, 'w') as f: json.dump({'meta': meta, 'rows': rows}, f, indent=1)
    print(f"wrote {a.out}", file=sys.stderr)
