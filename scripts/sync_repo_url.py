"""Make every Colab badge and every Colab install cell point at settings.ini's `git_url` (the one place the course's
public repository is named), and make every install cell the same checked `git clone` cell.

    python scripts/sync_repo_url.py           # rewrite the notebooks in nbs/
    python scripts/sync_repo_url.py --check   # exit 1 (listing the notebooks) if any would change

Change `git_url` (and `branch`) in settings.ini to publish the course under another repository, then run this."""
import argparse, json, re, sys
from configparser import ConfigParser
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
INSTALL = '''#| hide
# Runs only inside Google Colab: fetches the course (the library and its data/ folder of measured results) and
# installs the library without nbdev, so the imports below work. REPO is settings.ini's git_url (scripts/sync_repo_url.py).
import os, sys, subprocess
if 'google.colab' in sys.modules:
    REPO, HOME = '{url}', '/content/{repo}'
    if not os.path.isdir(HOME):
        r = subprocess.run(['git', 'clone', '-q', '--depth', '1', '--branch', '{branch}', REPO + '.git', HOME], capture_output=True, text=True)
        if r.returncode: raise RuntimeError(f"git clone {{REPO}} failed (exit {{r.returncode}}): {{r.stderr.strip()}}\\n"
                                            f"Check that the repository exists and is public (README: 'Publishing the course'), "
                                            f"or upload the course folder to {{HOME}} and run this cell again.")
    subprocess.run([sys.executable, '-m', 'pip', 'install', '-q', '-e', HOME], check=True)
    sys.path.insert(0, HOME)  # importable now, without restarting the runtime'''
BADGE = re.compile(r'https://colab\.research\.google\.com/github/[^/\s)]+/[^/\s)]+/blob/[^/\s)]+/')


def settings():
    c = ConfigParser(delimiters=['=']); c.read(ROOT / 'settings.ini', encoding='utf-8'); c = c['DEFAULT']
    url = c['git_url'].rstrip('/').removesuffix('.git')
    m = re.fullmatch(r'https://github\.com/([^/]+)/([^/]+)', url)
    if not m: sys.exit(f"settings.ini git_url must look like https://github.com/OWNER/REPO, got {url!r}")
    return url, m[1], m[2], c.get('branch', 'main')


def is_install_cell(src:str)->bool: return src.startswith('#| hide') and "'google.colab' in sys.modules" in src and 'clone' in src


def synced(nb:dict)->dict:
    url, owner, repo, branch = settings()
    install, badge = INSTALL.format(url=url, repo=repo, branch=branch), f'https://colab.research.google.com/github/{owner}/{repo}/blob/{branch}/'
    for c in nb['cells']:
        src = ''.join(c['source'])
        new = BADGE.sub(badge, src) if c['cell_type'] == 'markdown' else (install if is_install_cell(src) else src)
        if new != src: c['source'] = new.splitlines(keepends=True)
    return nb


def main(argv=None)->int:
    p = argparse.ArgumentParser(prog='python scripts/sync_repo_url.py', description=__doc__.split('\n\n')[0])
    p.add_argument('--check', action='store_true', help='change nothing; exit 1 if a notebook is out of sync')
    p.add_argument('paths', nargs='*', help='notebooks (default: every nbs/*.ipynb)')
    a = p.parse_args(argv)
    paths = [Path(x) for x in a.paths] or sorted((ROOT / 'nbs').glob('*.ipynb'))
    stale = []
    for path in paths:
        text = path.read_text(encoding='utf-8')
        nb = json.loads(text)
        out = json.dumps(synced(nb), indent=1, ensure_ascii=False) + '\n'
        if json.loads(out) != json.loads(text):
            stale.append(path.name)
            if not a.check: path.write_text(out, encoding='utf-8')
    if a.check and stale: print('out of sync with settings.ini git_url:', ', '.join(stale)); return 1
    if stale: print('rewrote', ', '.join(stale))
    return 0


if __name__ == '__main__': sys.exit(main())
