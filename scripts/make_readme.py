"""Regenerate README.md from nbs/index.ipynb (nbdev_readme needs Quarto, which is not installable here).

    python scripts/make_readme.py           # rewrite README.md
    python scripts/make_readme.py --check   # exit 1 if README.md is out of date (CI runs this)
"""
import json, re, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

def render() -> str:
    "README text: index.ipynb's markdown (notebook links pointed into nbs/), its code cells fenced, then the licence."
    parts = []
    for c in json.loads((ROOT / 'nbs' / 'index.ipynb').read_text())['cells']:
        s = ''.join(c['source']).strip()
        if c['cell_type'] == 'markdown':
            s = re.sub(r'^> ', '', s, flags=re.M)                                     # the summary line
            parts.append(re.sub(r'\]\((?!http)([\w.-]+\.ipynb)\)', r'](nbs/\1)', s))
        elif c['cell_type'] == 'code' and not s.startswith('#|'):
            parts.append('```python\n' + s + '\n```')
    parts.append('## Licence\n\nApache 2.0. See [LICENSE](LICENSE).')
    return '\n\n'.join(parts) + '\n'

if __name__ == '__main__':
    readme, text = ROOT / 'README.md', render()
    if '--check' in sys.argv:
        if readme.read_text() != text: sys.exit('README.md is out of date with nbs/index.ipynb: run python scripts/make_readme.py')
        print('README.md matches nbs/index.ipynb')
    else: readme.write_text(text)
