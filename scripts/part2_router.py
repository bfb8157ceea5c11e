"""Router quality of the stored routed recall model as the sequence grows, without retraining (chapter 13): per layer,
top-1 and recall@k of the chunks each query's block selected against the chunk that holds its answer, and the held-out
accuracy, at N = 2K, 8K and 32K tokens (MQAR with the model's own task settings, only seq_len changed).

    python scripts/part2_router.py data/part2_router.json [--lengths 2048,8192,32768] [--seqs 32] [--threads 2]

Reads data/recall_routed.pt; writes only the output path given. Runs one sequence at a time (the compressed weights of
one 32K sequence are (H, N, C) = 4 x 32768 x 2048 floats)."""
import argparse, json, os, platform, sys, time
from dataclasses import asdict, replace
import torch
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from msa_nb.routing import load_routed, routed_layers
from msa_nb.tasks import MQAR, evidence_positions, BLANK

if __name__ == '__main__':
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('out'); p.add_argument('--lengths', default='2048,8192,32768'); p.add_argument('--seqs', type=int, default=32)
    p.add_argument('--threads', type=int, default=2)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    model, task = load_routed()
    mems = [l.memory for l in routed_layers(model)]
    rows, t0, load0 = [], time.time(), os.getloadavg()
    for n in [int(s) for s in a.lengths.split(',')]:
        t = MQAR(**{**asdict(task), 'seq_len': n})
        x, y = t.eval_batch(a.seqs)                                          # (S, N) each, the held-out stream
        hits = [[] for _ in mems]; correct, asked = 0, 0; t1 = time.time()
        for i in range(a.seqs):
            with torch.no_grad(): logits = model(x[i:i + 1])                 # (1, N, V); each layer keeps its choice in last_selected
            grabbed = [m.last_selected for m in mems]                        # one (1, NB, k) per layer, no dense weights
            q = (y[i] != BLANK).nonzero().squeeze(1)                         # (M,) query positions
            correct += (logits[0, q].argmax(-1) == y[i, q]).sum().item(); asked += len(q)
            ev = evidence_positions(x[i:i + 1], y[i:i + 1])[0]               # (N,) answer position per query
            for l, (m, idx) in enumerate(zip(mems, grabbed)):
                hits[l].append(idx[0, q // m.chunk] == (ev[q] // m.chunk)[:, None])  # (M, k)
        for l, h in enumerate(hits):
            h = torch.cat(h)                                                 # (all queries, k)
            rows.append({'N': n, 'layer': l, 'chunks': -(-n // mems[l].chunk), 'top_k': mems[l].top_k, 'top1': h[:, 0].float().mean().item(),
                         **{f'recall@{k}': h[:, :k].any(1).float().mean().item() for k in range(1, mems[l].top_k + 1)},
                         'chance@k': mems[l].top_k / -(-n // mems[l].chunk), 'acc': correct / asked, 'queries': asked})
            print(rows[-1], f'{time.time() - t1:.0f} s', file=sys.stderr, flush=True)
    meta = {'model': 'data/recall_routed.pt', 'task': asdict(task), 'seqs': a.seqs, 'threads': torch.get_num_threads(), 'torch': torch.__version__,
            'machine': f'{platform.machine()} {platform.system()}, {os.cpu_count()} cpus', 'load_before': [round(v, 2) for v in load0],
            'load_after': [round(v, 2) for v in os.getloadavg()], 'total_s': round(time.time() - t0, 1),
            'date': time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime()), 'command': 'python scripts/part2_router.py ' + ' '.join(sys.argv[1:])}
    with open(a.out, 'w') as f: json.dump({'meta': meta, 'rows': rows}, f, indent=1)
