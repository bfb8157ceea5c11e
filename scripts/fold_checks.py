"""Collapse the checking cells of the chapters when they are opened in JupyterLab / Notebook 7.

A checking cell (validators' error messages, edge sweeps, exactness sweeps: what proves the code right but does not
teach it) starts with the nbdev directive `#| hide` and its next line is a comment `# checks: <what it checks>`.
`nbdev_test` still runs it (only the `tst_flags` of settings.ini skip a cell); the website drops it
(scripts/mkdocs_hooks.py); and this script gives it the cell metadata `"jupyter": {"source_hidden": true}`, so that
JupyterLab and Notebook 7 show it folded (click the bar to open it). Every other cell gets no `jupyter` metadata.
settings.ini's `allowed_cell_metadata_keys = jupyter` makes `nbdev_clean` keep it.

Colab is left alone: it folds a cell only as a form (`"cellView": "form"` plus a `#@title` line at the top of the
source), and a `#@title` first line would push nbdev's `#| hide` off the top of the cell, where nbdev no longer reads
it as a directive. In Colab the checking cells stay open; they are short and each says what it checks.

    python scripts/fold_checks.py            # set the metadata in nbs/*.ipynb (idempotent)
    python scripts/fold_checks.py --check    # change nothing; exit 1 and list the notebooks that would change
"""
import argparse, json, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FOLDED = {'source_hidden': True}


def is_check_cell(cell)->bool:
    "A code cell whose first line is `#| hide` and whose second is a `# checks:` comment."
    if cell.get('cell_type') != 'code': return False
    lines = ''.join(cell.get('source', '')).splitlines()
    return len(lines) >= 2 and lines[0].strip() == '#| hide' and lines[1].startswith('# checks:')


def fold(nb)->int:
    "Set the folding metadata of every cell of `nb` (a dict) in place; return how many cells changed."
    changed = 0
    for c in nb.get('cells', []):
        md = c.setdefault('metadata', {})
        want = FOLDED if is_check_cell(c) else None
        if md.get('jupyter') == want: continue
        if want is None: md.pop('jupyter')
        else: md['jupyter'] = dict(want)
        changed += 1
    return changed


def nb2str(nb)->str:
    "The notebook as nbdev writes it (execnb's nb2str), so that nbdev_clean and this script agree byte for byte."
    return json.dumps(nb, sort_keys=True, indent=1, ensure_ascii=False) + '\n'


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--check', action='store_true', help='change nothing; exit 1 if any notebook would change')
    p.add_argument('--nbs', default=str(ROOT / 'nbs'), help='folder of notebooks (default: nbs/)')
    a = p.parse_args(argv)
    nbs = Path(a.nbs)
    if not nbs.is_dir(): p.error(f'--nbs {a.nbs}: not a folder')
    stale = []
    for path in sorted(nbs.glob('*.ipynb')):
        text = path.read_text(encoding='utf-8')
        nb = json.loads(text)
        n = fold(nb)
        if not n: continue
        stale.append(f'{path.name} ({n} cell(s))')
        if not a.check: path.write_text(nb2str(nb), encoding='utf-8')
    if a.check and stale:
        print('!! checking cells not folded (run python scripts/fold_checks.py):\n  ' + '\n  '.join(stale))
        return 1
    print(('would change: ' if a.check else 'folded: ') + (', '.join(stale) or 'nothing to change'))
    return 0


if __name__ == '__main__': sys.exit(main())
