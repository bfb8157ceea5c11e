"""Characters of code a reader sees against characters of prose, per chapter (the "reading path" of issue 15).

Visible code: code cells that are not `#| hide` (the Colab install cell and the folded checking cells are hidden).
Hidden code: `#| hide` cells. Prose: markdown cells.

    python scripts/count_chars.py                         # every notebook of nbs/
    python scripts/count_chars.py nbs/01_attention.ipynb  # some
"""
import argparse, json, sys
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parent))
import nbdirectives

ROOT = Path(__file__).resolve().parents[1]


hidden = nbdirectives.is_hidden  # a code cell flagged `#| hide`


def count(path)->dict:
    "{'visible_code', 'hidden_code', 'prose'} characters of one notebook."
    out = dict(visible_code=0, hidden_code=0, prose=0)
    for c in json.loads(Path(path).read_text(encoding='utf-8'))['cells']:
        n = len(''.join(c.get('source', '')))
        if c['cell_type'] == 'markdown': out['prose'] += n
        elif c['cell_type'] == 'code': out['hidden_code' if hidden(c) else 'visible_code'] += n
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('notebooks', nargs='*', help='notebooks (default: nbs/*.ipynb)')
    a = p.parse_args(argv)
    paths = [Path(x) for x in a.notebooks] or sorted((ROOT / 'nbs').glob('*.ipynb'))
    for x in paths:
        if not x.is_file(): p.error(f'{x}: no such notebook')
    print(f"{'notebook':32} {'visible code':>12} {'hidden code':>12} {'prose':>8} {'code/prose':>10}")
    tot = dict(visible_code=0, hidden_code=0, prose=0)
    for x in paths:
        c = count(x)
        for k in tot: tot[k] += c[k]
        print(f"{x.name:32} {c['visible_code']:12,} {c['hidden_code']:12,} {c['prose']:8,} {c['visible_code'] / max(c['prose'], 1):10.2f}")
    print(f"{'total':32} {tot['visible_code']:12,} {tot['hidden_code']:12,} {tot['prose']:8,} {tot['visible_code'] / max(tot['prose'], 1):10.2f}")


if __name__ == '__main__': sys.exit(main())
