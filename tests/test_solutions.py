"""Run every exercise-solutions notebook in solutions/ (one pytest test each), and check that every exercise of every
chapter has a solution.

The solutions are notebooks for teachers (solutions/NN_topic_solutions.ipynb): they import the library, answer each
exercise of chapter NN under a heading "## Exercise k", and assert their answers with fastcore.test. They are executed
here top to bottom by `nbdev_test`, like the chapters (cells flagged `#| notest`, `#| slow`, `#| gpu` are skipped), so
a change in the library that breaks an answer fails the test run. New solutions notebooks are picked up by themselves.
"""
import json, os, re, subprocess, sys, time
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parents[1]
SOLUTIONS = sorted(p for p in (ROOT / 'solutions').glob('*.ipynb') if not p.name.startswith(('_', '.')))
NBDEV_TEST = Path(sys.executable).with_name('nbdev_test')
LIMIT_S = int(os.environ.get('MSA_NB_TEST_TIMEOUT', '900'))


def _exercises(nb_path):
    "Number of exercises in a chapter: the numbered items of its '## Exercises' markdown cell."
    cells = json.loads(nb_path.read_text(encoding='utf-8'))['cells']
    for c in cells:
        src = ''.join(c['source'])
        if c['cell_type'] == 'markdown' and re.search(r'^## Exercises\s*$', src, re.M):
            body = src[re.search(r'^## Exercises\s*$', src, re.M).end():]
            return len(re.findall(r'^\d+\.\s', body, re.M))
    return 0


@pytest.mark.parametrize('nb', SOLUTIONS, ids=[p.stem for p in SOLUTIONS])
def test_solutions_notebook(nb):
    t0 = time.perf_counter()
    r = subprocess.run([str(NBDEV_TEST), '--path', str(nb.relative_to(ROOT)), '--n_workers', '0'],
                       cwd=ROOT, capture_output=True, text=True, timeout=LIMIT_S)
    print(f'{nb.name}: {time.perf_counter() - t0:.1f} s')
    assert r.returncode == 0 and 'Success' in r.stdout + r.stderr, f'{nb.name} failed:\n{r.stdout[-6000:]}\n{r.stderr[-6000:]}'


CHAPTERS = sorted(p for p in (ROOT / 'nbs').glob('[0-9]*.ipynb') if _exercises(p))


@pytest.mark.parametrize('chapter', CHAPTERS, ids=[p.stem for p in CHAPTERS])
def test_every_exercise_has_a_solution(chapter):
    sol = ROOT / 'solutions' / f'{chapter.stem}_solutions.ipynb'
    assert sol.exists(), f'{chapter.name} has {_exercises(chapter)} exercises but there is no {sol.relative_to(ROOT)}'
    headings = {int(m) for c in json.loads(sol.read_text(encoding='utf-8'))['cells'] if c['cell_type'] == 'markdown'
                for m in re.findall(r'^## Exercise (\d+)\b', ''.join(c['source']), re.M)}
    missing = sorted(set(range(1, _exercises(chapter) + 1)) - headings)
    assert not missing, f'{sol.name}: no "## Exercise k" section for k in {missing}'


def test_solutions_are_not_part_of_the_library_or_the_student_path():
    assert not (ROOT / 'nbs' / 'solutions').exists()
    for nb in SOLUTIONS:
        src = nb.read_text(encoding='utf-8')
        assert 'default_exp' not in src and '#| export' not in src, f'{nb.name} must not export anything'
