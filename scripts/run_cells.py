"""Run a notebook's code cells as a script, where nbdev is not installed (e.g. the GPU machine).

    python scripts/run_cells.py nbs/10_timing.ipynb [--flags gpu] [--skip slow,notest]

Cells run in order in one namespace, like `nbdev_test --flags ...`: a cell carrying a flag in --skip is skipped
unless that flag is also in --flags. Figures are saved to $OUT (or /tmp) instead of shown."""
import __future__, argparse, json, linecache, os, re, sys, time, types
import matplotlib
matplotlib.use('Agg')
import matplotlib.pyplot as plt

p = argparse.ArgumentParser()
p.add_argument('nb'); p.add_argument('--flags', default=''); p.add_argument('--skip', default='notest,slow,gpu')
a = p.parse_args()
flags, skip = set(filter(None, a.flags.split(','))), set(filter(None, a.skip.split(',')))
out_dir = os.environ.get('OUT', '/tmp'); stem = os.path.splitext(os.path.basename(a.nb))[0]
n_fig = 0
def show(*_, **__):
    global n_fig
    if not os.environ.get('FIGS'): plt.close('all'); return
    for num in plt.get_fignums():
        n_fig += 1; plt.figure(num).savefig(f'{out_dir}/{stem}_fig{n_fig}.png', dpi=80)
    plt.close('all')
plt.show = show
sys.path.insert(0, os.getcwd())
mod = sys.modules['__nbrun__'] = types.ModuleType('__nbrun__')  # not '__main__': cells guarded for `python -m` stay quiet
ns = mod.__dict__
flags_c = 0  # a `from __future__` import holds for the later cells too, as in IPython
for i, c in enumerate(json.load(open(a.nb))['cells']):
    if c['cell_type'] != 'code': continue
    src = ''.join(c['source'])
    cell_flags = set(re.findall(r'^#\|\s*(\w+)\s*$', src, re.M))
    if (cell_flags & skip) - flags: print(f'--- cell {i}: skipped ({", ".join(sorted(cell_flags & skip))})'); continue
    t0 = time.perf_counter()
    print(f'--- cell {i}' + (f' [{", ".join(sorted(cell_flags & flags))}]' if cell_flags & flags else ''), flush=True)
    if re.search(r'^from __future__ import annotations', src, re.M): flags_c |= __future__.annotations.compiler_flag
    name = f'{a.nb}:cell{i}'
    linecache.cache[name] = (len(src), None, src.splitlines(keepends=True), name)  # inspect.getsource works, as in IPython
    exec(compile(src, name, 'exec', flags=flags_c, dont_inherit=True), ns)
    print(f'    ({time.perf_counter() - t0:.1f} s)', flush=True)
print(f'OK: {a.nb} ran with flags {sorted(flags)}')
