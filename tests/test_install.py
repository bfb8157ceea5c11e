"""A non-editable install works outside the repository: build the wheel, install it into a fresh virtual environment,
and from another folder load every stored result and the explorer (headless), as an importer of msa_nb would.

To stay fast and offline, the fresh environment gets no copies of torch & co.: a .pth file points it at the
site-packages of the interpreter running the tests (without processing that folder's own .pth files, so the
editable install of the repository there stays invisible). The wheel itself is installed with --no-deps.
The same check by hand, with a real download of the dependencies:

    python -m venv /tmp/v && /tmp/v/bin/pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu
    /tmp/v/bin/pip install . && cd /tmp && /tmp/v/bin/python -c "from msa_nb.viz import Explorer; Explorer()"
"""
import os, subprocess, sys, sysconfig, textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CHECK = textwrap.dedent('''
    import os, sys
    from pathlib import Path
    import msa_nb
    from msa_nb.core import STORED, stored_path, stored_dirs
    pkg = Path(msa_nb.__file__).resolve().parent
    assert pkg.parent.name == 'site-packages' and str(pkg).startswith(sys.prefix), pkg      # the installed copy, not the repository
    for name in STORED: assert stored_path(name).parent == pkg / 'data', (name, stored_path(name))
    from msa_nb.train import Trainer
    tr = Trainer.load(stored_path('selective_copy_model.pt'))
    from msa_nb.viz import Explorer
    ex = Explorer()                                                       # the explorer with its stored checkpoint and timings
    assert ex.checkpoint_path() is not None and ex.stored_rows(), (ex.checkpoint, ex.bench_csv)
    ex.train(2, start='checkpoint')
    from msa_nb.layer import MSAttention
    assert 'one-sided local window' in MSAttention.__init__.__doc__      # help() works from the installed source too
    print('INSTALLED OK', pkg)
''')


def run(*cmd, **kw):
    r = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=600, **kw)
    assert r.returncode == 0, f"{' '.join(map(str, cmd))} failed:\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    return r


def test_wheel_outside_the_repository(tmp_path):
    try: import setuptools; offline = ['--no-build-isolation']                       # build with the setuptools we have
    except ImportError: offline = []                                                  # (Python 3.12+ venvs have none: pip fetches it)
    run(sys.executable, '-m', 'pip', 'wheel', '--no-deps', *offline, '-q', '-w', tmp_path / 'dist', ROOT, cwd=tmp_path)
    wheel, = (tmp_path / 'dist').glob('msa_nb-*.whl')
    venv = tmp_path / 'venv'
    run(sys.executable, '-m', 'venv', '--without-pip', venv)
    py = venv / 'bin' / 'python'
    site = Path(run(py, '-c', 'import sysconfig; print(sysconfig.get_paths()["purelib"])').stdout.strip())
    (site / '_deps_of_the_test_runner.pth').write_text(sysconfig.get_paths()['purelib'] + '\n')
    run(sys.executable, '-m', 'pip', 'install', '--no-deps', '-q', '--target', site, wheel)
    away = tmp_path / 'elsewhere'; away.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ('PYTHONPATH', 'MSA_NB_HOME')} | {'MSA_NB_HOME': str(tmp_path / 'home')}
    r = run(py, '-c', CHECK, cwd=away, env=env)
    assert 'INSTALLED OK' in r.stdout, r.stdout
    r = subprocess.run([py, '-m', 'msa_nb.train', 'selective-copy', '--lr', 'inf'], capture_output=True, text=True, cwd=away, env=env, timeout=300)
    assert r.returncode == 2 and 'usage:' in r.stderr and 'Traceback' not in r.stderr, r.stderr


def test_colab_links_follow_settings():
    "Every badge and install cell names settings.ini's git_url (scripts/sync_repo_url.py --check)."
    pending = set()  # notebooks owned by another branch while this was written (run scripts/sync_repo_url.py after merging)
    nbs = [p for p in sorted((ROOT / 'nbs').glob('*.ipynb')) if p.name not in pending]
    r = subprocess.run([sys.executable, ROOT / 'scripts' / 'sync_repo_url.py', '--check', *nbs], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
