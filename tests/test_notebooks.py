"""Run every course notebook's tests as one pytest test each (the notebooks hold the tests, next to the code).

Each notebook is executed top to bottom by `nbdev_test` in its own process, skipping cells flagged
`#| notest`, `#| slow` or `#| gpu` (see `tst_flags` in settings.ini), so pytest ends with a countable
"N passed" line and a failing assertion in any notebook fails the run.
"""
import os, subprocess, sys, time
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parents[1]
NBS = sorted(p for p in (ROOT / 'nbs').glob('*.ipynb') if not p.name.startswith('_'))
NBDEV_TEST = Path(sys.executable).with_name('nbdev_test')
LIMIT_S = int(os.environ.get('MSA_NB_TEST_TIMEOUT', '900'))  # per notebook; each is meant to take about a minute on an idle 2-core machine; generous for a loaded one


@pytest.mark.parametrize('nb', NBS, ids=[p.stem for p in NBS])
def test_notebook(nb):
    t0 = time.perf_counter()
    r = subprocess.run([str(NBDEV_TEST), '--path', str(nb.relative_to(ROOT)), '--n_workers', '0'],
                       cwd=ROOT, capture_output=True, text=True, timeout=LIMIT_S)
    took = time.perf_counter() - t0
    print(f'{nb.name}: {took:.1f} s')
    assert r.returncode == 0 and 'Success' in r.stdout + r.stderr, f'{nb.name} failed:\n{r.stdout[-6000:]}\n{r.stderr[-6000:]}'


def test_there_are_notebooks():
    assert len(NBS) >= 8, [p.name for p in NBS]
