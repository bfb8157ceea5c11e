"""Execute the course's chapters and store their outputs in the notebooks, so that every figure, table and printed
result is visible where a chapter is opened (on the repository's web page, in Colab before running, on the website).

    python scripts/execute_course.py                          # every notebook of nbs/, in place
    python scripts/execute_course.py --chapters 02_banded 05  # some (a name, a stem or a number prefix)
    python scripts/execute_course.py --nbs /tmp/copy          # a copy elsewhere (nbs/ untouched)

Each notebook runs top to bottom in a fresh kernel (nbclient), in its own folder, with the repository on PYTHONPATH.
Skipped, and marked as such in their output: cells flagged `#| notest` or `#| slow` (long retraining: the chapters read
stored results instead), and, when this machine has no CUDA device, cells flagged `#| gpu`. For outputs that do not
churn the diff on a re-run: fixed seeds (torch, random, numpy; PYTHONHASHSEED), PNG figures without the matplotlib
version in their metadata, SVG with a fixed hash salt, no widget state kept in the notebook, and `nbdev_clean` afterwards
(settings.ini has `clear_all = False`, so it keeps outputs; it drops execution counts and object ids).
A cell that raises stops that notebook: the script reports it and exits 1 without writing that notebook.
"""
import argparse, json, os, shutil, subprocess, sys, tempfile, time
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parent))
import nbdirectives

ROOT = Path(__file__).resolve().parents[1]
SKIP_FLAGS = ('notest', 'slow')
TAG = 'skip-execution'   # nbclient's own tag for cells it must not run

STARTUP = '''\
import os, random
os.environ.setdefault('MPLBACKEND', 'module://matplotlib_inline.backend_inline')
random.seed(0)
try:
    import numpy; numpy.random.seed(0)
except ImportError: pass
try:
    import torch; torch.manual_seed(0)
except ImportError: pass
import matplotlib
matplotlib.rcParams['svg.hashsalt'] = 'msa_nb'          # stable ids inside SVG figures
matplotlib.rcParams['savefig.dpi'] = 'figure'
'''
KERNEL_CONFIG = '''\
c.InlineBackend.figure_formats = {'png'}
c.InlineBackend.print_figure_kwargs = {'bbox_inches': 'tight', 'metadata': {'Software': None}}
'''


def flags(cell):
    "The `#|` directive names of a code cell (`notest`, `slow`, `gpu`, ...): nbdev's parser, shared by the course's scripts."
    return nbdirectives.flags(cell)


def has_cuda():
    try:
        import torch
        return torch.cuda.is_available()
    except ImportError: return False


def select(nbs_dir, chapters):
    "Notebooks of `nbs_dir` named by `chapters` (file name, stem or number prefix); all of them when none are given."
    nbs = sorted(p for p in Path(nbs_dir).glob('*.ipynb') if not p.name.startswith(('_', '.')))
    if not chapters: return nbs
    out = []
    for c in chapters:
        hit = [p for p in nbs if p.name == c or p.stem == c or p.stem.split('_')[0] == c]
        if not hit: raise SystemExit(f'error: no notebook {c!r} in {nbs_dir} (have: {", ".join(p.stem for p in nbs)})')
        out += [p for p in hit if p not in out]
    return out


def notice(why):
    from nbformat.v4 import new_output
    return new_output('stream', name='stdout', text=f'[not run by scripts/execute_course.py: {why}]\n')


def execute(path, timeout, gpu):
    "Run one notebook in a fresh kernel; return the executed notebook (a NotebookNode) and the seconds it took."
    import nbformat
    from nbclient import NotebookClient
    nb = nbformat.read(path, as_version=4)
    skipped = {}
    for i, c in enumerate(nb.cells):
        if c.cell_type != 'code': continue
        f = flags(c)
        why = next((f'flagged #| {x} (long or not a test; the chapter shows stored results)' for x in SKIP_FLAGS if x in f), None)
        if why is None and 'gpu' in f and not gpu: why = 'flagged #| gpu and this machine has no CUDA device'
        if why:
            skipped[i] = why
            c.metadata.setdefault('tags', []).append(TAG)
    t0 = time.perf_counter()
    client = NotebookClient(nb, timeout=timeout, kernel_name='python3', resources={'metadata': {'path': str(path.parent)}},
                            store_widget_state=True, record_timing=False, allow_errors=False)
    client.execute()
    took = time.perf_counter() - t0
    nb.metadata.pop('widgets', None)   # widget state: large, and a live page needs the kernel anyway (nbclient's Output widget needs it while running)
    for i, c in enumerate(nb.cells):
        if i in skipped:
            c.metadata['tags'] = [t for t in c.metadata.get('tags', []) if t != TAG]
            if not c.metadata['tags']: del c.metadata['tags']
            c.outputs = [notice(skipped[i])]
    return nb, took


def main(argv=None):
    p = argparse.ArgumentParser(prog='python scripts/execute_course.py', description=__doc__.split('\n\n')[0])
    p.add_argument('--chapters', nargs='*', default=[], help='notebooks to run (name, stem or number prefix); default all')
    p.add_argument('--nbs', default=str(ROOT / 'nbs'), help='folder of the notebooks (default: nbs/ of this repository)')
    p.add_argument('--timeout', type=int, default=600, help='seconds allowed per cell (default 600)')
    p.add_argument('--no-clean', action='store_true', help='skip nbdev_clean afterwards')
    a = p.parse_args(argv)
    nbs_dir = Path(a.nbs).resolve()
    if not nbs_dir.is_dir(): p.error(f'--nbs {a.nbs}: not a folder')
    if a.timeout < 1: p.error(f'--timeout must be >= 1, got {a.timeout}')
    todo = select(nbs_dir, a.chapters)
    gpu = has_cuda()
    import nbformat
    with tempfile.TemporaryDirectory() as tmp:
        ipy = Path(tmp) / 'ipython'; (ipy / 'profile_default' / 'startup').mkdir(parents=True)
        (ipy / 'profile_default' / 'startup' / '00-course.py').write_text(STARTUP)
        (ipy / 'profile_default' / 'ipython_kernel_config.py').write_text(KERNEL_CONFIG)
        env = {**os.environ, 'IPYTHONDIR': str(ipy), 'PYTHONHASHSEED': '0', 'SOURCE_DATE_EPOCH': '0',
               'MPLBACKEND': 'module://matplotlib_inline.backend_inline',
               'PYTHONPATH': os.pathsep.join([str(ROOT)] + [x for x in os.environ.get('PYTHONPATH', '').split(os.pathsep) if x])}
        os.environ.update(env)   # the kernels inherit it
        total, failed = 0.0, []
        for path in todo:
            try: nb, took = execute(path, a.timeout, gpu)
            except Exception as e:
                failed.append(path.name)
                print(f'FAILED {path.name}: {type(e).__name__}: {str(e)[-2000:]}', file=sys.stderr); continue
            nbformat.write(nb, path)
            total += took
            print(f'{path.name}: {took:.1f} s', flush=True)
    if not a.no_clean and todo:
        nbdev_clean = Path(sys.executable).with_name('nbdev_clean')
        for path in todo:
            subprocess.run([str(nbdev_clean), '--fname', str(path)], cwd=ROOT, check=True)
    print(f'executed {len(todo) - len(failed)} of {len(todo)} notebooks in {total:.0f} s '
          f'(load average {os.getloadavg()[0]:.1f}, {"CUDA" if gpu else "CPU only"})')
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
