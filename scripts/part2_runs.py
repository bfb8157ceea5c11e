"""Regenerate the stored Part II training results (chapter 13): every variant is one `python -m msa_nb.train` run
with 2 CPU threads, several run side by side (one per pair of cores), each writing its JSON; then one table.

    python scripts/part2_runs.py recall data/part2_recall.json [--jobs 1]
    python scripts/part2_runs.py selective-copy data/part2_selective_copy.json

Nothing is read from or written to data/ except the output path given."""
import argparse, json, os, platform, subprocess, sys, tempfile, time
from concurrent.futures import ThreadPoolExecutor

VARIANTS = {  # name -> CLI options on top of the task's base command
    'local only': ['--memory', 'routed', '--gate', 'local'],
    'bank (Part I)': ['--memory', 'bank'],
    'compressed only': ['--memory', 'routed', '--gate', 'compressed'],
    'selected only': ['--memory', 'routed', '--gate', 'selected'],
    'local + compressed': ['--memory', 'chunks'],
    'routed (three gated)': ['--memory', 'routed'],
}
SAME = ['--layers', '1', '--steps', '150', '--batch-size', '16', '--shift', 'on', '--eval-every', '25']  # every variant alike (the bank too)
BASE = {'recall': ['recall', '--seq-len', '2048', '--seed', '0', *SAME],
        'selective-copy': ['selective-copy', '--seq-len', '2048', '--min-gap', '200', '--max-gap', '400', '--seed', '0', *SAME]}

def run(task, name, extra, tmp):
    out = os.path.join(tmp, name.replace(' ', '_').replace(',', '').replace('(', '').replace(')', '') + '.json')
    cmd = [sys.executable, '-m', 'msa_nb.train', *BASE[task], *VARIANTS[name], '--threads', '2', '--device', 'cpu', '--quiet', '--json', out, *extra]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode: raise RuntimeError(f"{name}: {r.stderr[-2000:]}")
    res = json.load(open(out)); res.setdefault('command', ' '.join(cmd[1:]))
    print(f"{name:<22} acc {res.get('acc', res.get('non_blank_acc')):.3f}  wall {res['wall_s']:.0f} s", file=sys.stderr, flush=True)
    return name, res

if __name__ == '__main__':
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('task', choices=sorted(BASE)); p.add_argument('out')
    p.add_argument('--jobs', type=int, default=max(1, (os.cpu_count() or 2) // 2)); p.add_argument('--variants', default=','.join(VARIANTS))
    a, extra = p.parse_known_args()
    names = [n for n in a.variants.split(',') if n]
    bad = [n for n in names if n not in VARIANTS]
    if bad: p.error(f"unknown variants {bad}; choose from {list(VARIANTS)}")
    t0, load0 = time.time(), os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp, ThreadPoolExecutor(a.jobs) as ex:
        runs = dict(ex.map(lambda n: run(a.task, n, extra, tmp), names))
    meta = {'task': a.task, 'jobs_side_by_side': a.jobs, 'threads_per_run': 2, 'machine': f'{platform.machine()} {platform.system()}, {os.cpu_count()} cpus',
            'load_before': [round(x, 2) for x in load0], 'load_after': [round(x, 2) for x in os.getloadavg()],
            'total_wall_s': round(time.time() - t0, 1), 'date': time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}
    with open(a.out, 'w') as f: json.dump({'meta': meta, 'runs': runs}, f, indent=1)
    print(f"wrote {a.out}", file=sys.stderr)
