"""Check that the chapters carry their outputs: every code cell that draws a figure has a stored image, and no stored
output is an error.

    python scripts/check_outputs.py               # the notebooks of nbs/; exit 1 and a list when something is missing
    python scripts/check_outputs.py --nbs DIR     # another folder (e.g. an executed copy)
    python scripts/check_outputs.py --required    # print whether settings.ini asks for stored outputs (True/False)

A cell "draws a figure" when, outside any `def`/`class`, it calls a plotting function: a matplotlib method such as
`plt.subplots`, `ax.imshow`, `ax.plot`, or a course helper whose name starts with `plot_`, and does not close its
figures with `plt.close(...)` (a cell that tests a figure's contents and closes it shows none, by design); drawing under
an opt-in switch (`if RETRAIN:` / `if REMEASURE:`, False by default) does not count. Cells that
scripts/execute_course.py does not run (flagged `#| notest`, `#| slow`, `#| gpu`) are not required to hold a figure.
Stored outputs are required by the test suite only once settings.ini says `outputs_required = True` (the
coordinator flips it when the executed chapters are committed); until then tests/test_outputs.py skips, saying so.
"""
import argparse, ast, configparser, json, sys
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parent))
import nbdirectives

ROOT = Path(__file__).resolve().parents[1]
DRAW = {'imshow', 'matshow', 'plot', 'scatter', 'bar', 'barh', 'hist', 'pcolormesh', 'pcolor', 'contour', 'contourf',
        'fill_between', 'errorbar', 'loglog', 'semilogx', 'semilogy', 'subplots', 'subplot', 'figure', 'stem',
        'step', 'boxplot', 'violinplot', 'heatmap', 'axhline', 'axvline'}
NOT_RUN = {'notest', 'slow', 'gpu'}
SWITCHES = {'RETRAIN', 'REMEASURE'}   # opt-in switches (default False): the code under `if RETRAIN:` does not run by default
IMAGE = ('image/png', 'image/svg+xml', 'image/jpeg')


def outputs_required(settings=ROOT / 'settings.ini'):
    "settings.ini's `outputs_required` (False when absent)."
    cfg = configparser.ConfigParser(delimiters=['=']); cfg.read(settings, encoding='utf-8')
    return cfg['DEFAULT'].get('outputs_required', 'False').strip().lower() in ('true', '1', 'yes')


def flags(src):
    "The `#|` directive names of a code cell's source (nbdev's parser, shared by the course's scripts)."
    return nbdirectives.flags({'cell_type': 'code', 'source': src})


def _name(f):
    return f.attr if isinstance(f, ast.Attribute) else f.id if isinstance(f, ast.Name) else None


def draws(src):
    "Does this cell's top-level code (outside def/class) call a plotting function?"
    lines = [l for l in src.splitlines() if not l.lstrip().startswith(('%', '!'))]   # IPython magics are not Python
    try: tree = ast.parse('\n'.join(lines))
    except SyntaxError: return False
    todo, drawn = list(tree.body), False
    while todo:
        node = todo.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)): continue
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id in SWITCHES:
            todo.extend(node.orelse); continue                                     # the opt-in branch is not run by default
        if isinstance(node, ast.Call):
            n = _name(node.func)
            if n == 'close' and isinstance(node.func, ast.Attribute) and _name(node.func.value) == 'plt': return False
            if n and (n in DRAW or n.startswith('plot_')): drawn = True
        todo.extend(ast.iter_child_nodes(node))
    return drawn


def problems(nb_path):
    "Problems of one notebook: figure cells with no stored image, stored error outputs."
    nb = json.loads(Path(nb_path).read_text(encoding='utf-8'))
    out = []
    for i, c in enumerate(nb['cells']):
        if c['cell_type'] != 'code': continue
        src = ''.join(c['source'])
        outs = c.get('outputs', [])
        for o in outs:
            if o.get('output_type') == 'error':
                out.append(f'{Path(nb_path).name} cell {i}: a stored error ({o.get("ename")}: {o.get("evalue", "")[:80]})')
        if flags(src) & NOT_RUN or not draws(src): continue
        if not any(k in o.get('data', {}) for o in outs for k in IMAGE):
            first = next((l for l in src.splitlines() if l.strip() and not l.startswith('#|')), '')
            out.append(f'{Path(nb_path).name} cell {i}: draws a figure but has none stored ({first.strip()[:70]})')
    return out


def main(argv=None):
    p = argparse.ArgumentParser(prog='python scripts/check_outputs.py', description=__doc__.split('\n\n')[0])
    p.add_argument('--nbs', default=str(ROOT / 'nbs'), help='folder of the notebooks (default: nbs/)')
    p.add_argument('--required', action='store_true', help="print settings.ini's outputs_required and exit")
    a = p.parse_args(argv)
    if a.required:
        print(outputs_required()); return 0
    d = Path(a.nbs)
    if not d.is_dir(): p.error(f'--nbs {a.nbs}: not a folder')
    nbs = sorted(x for x in d.glob('*.ipynb') if not x.name.startswith(('_', '.')))
    if not nbs: p.error(f'--nbs {a.nbs}: no notebooks there')
    found = [m for nb in nbs for m in problems(nb)]
    n_fig = sum(draws(''.join(c['source'])) and not flags(''.join(c['source'])) & NOT_RUN
                for nb in nbs for c in json.loads(nb.read_text(encoding='utf-8'))['cells'] if c['cell_type'] == 'code')
    for m in found: print(m)
    print(f'{len(nbs)} notebooks, {n_fig} figure cells: {"all stored" if not found else f"{len(found)} problem(s)"}')
    return 1 if found else 0


if __name__ == '__main__':
    sys.exit(main())
