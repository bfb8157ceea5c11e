"""The course website, built and opened in a real browser (Playwright driving Debian's Chromium).

Builds the site with `mkdocs build --strict` into a temporary folder (the hooks in scripts/mkdocs_hooks.py also fail
the build on a resource from another host or a broken link), serves it on 127.0.0.1, and opens the landing page, a
chapter with a figure and rendered maths, an API page and the search. Every request to a host other than 127.0.0.1
is intercepted, aborted and makes the test fail; so does any console error. Screenshots go to tests/artifacts/.

Until the executed chapters are committed (settings.ini `outputs_required = False`), the site is built from a copy of
nbs/ in which one small chapter (02_banded) has been executed by scripts/execute_course.py, so that a figure exists.

Skips when Chromium, Playwright or mkdocs is missing, except when the environment variable CI is set: then it fails.
"""
import os, shutil, subprocess, sys, time, urllib.request
from pathlib import Path
from urllib.parse import urlsplit
import pytest

from test_browser import ARTIFACTS, CHROMIUM, FLAGS, _free_port, _require   # the explorer test's launch flags and skip rule

ROOT = Path(__file__).resolve().parents[1]
CHAPTER = '02_banded'   # small, has figures and maths
BUILD_LIMIT_S = 600


def _outputs_required():
    sys.path.insert(0, str(ROOT / 'scripts'))
    try:
        from check_outputs import outputs_required
        return outputs_required()
    finally: sys.path.pop(0)


@pytest.fixture(scope='module')
def site(tmp_path_factory):
    "The built site: (its folder, the build's seconds)."
    try: import mkdocs, material, mkdocs_jupyter, mkdocstrings, jupyter_server_mathjax  # noqa: F401
    except ImportError as e: _require(False, f'the docs stack is not installed ({e}; pip install -e ".[docs]")')
    tmp = tmp_path_factory.mktemp('site')
    env = {**os.environ, 'NO_MKDOCS_2_WARNING': '1',
           'PYTHONPATH': os.pathsep.join([str(ROOT)] + [p for p in os.environ.get('PYTHONPATH', '').split(os.pathsep) if p])}
    if not _outputs_required():
        nbs = tmp / 'nbs'
        shutil.copytree(ROOT / 'nbs', nbs, ignore=shutil.ignore_patterns('.*', '_proc'))
        r = subprocess.run([sys.executable, str(ROOT / 'scripts' / 'execute_course.py'), '--nbs', str(nbs),
                            '--chapters', CHAPTER], cwd=ROOT, env=env, capture_output=True, text=True, timeout=BUILD_LIMIT_S)
        assert r.returncode == 0, f'executing {CHAPTER} failed:\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}'
        env['MSA_NB_SITE_NBS'] = str(nbs)
    t0 = time.perf_counter()
    r = subprocess.run([sys.executable, '-m', 'mkdocs', 'build', '--strict', '--site-dir', str(tmp / 'site')],
                       cwd=ROOT, env=env, capture_output=True, text=True, timeout=BUILD_LIMIT_S)
    took = time.perf_counter() - t0
    assert r.returncode == 0, f'mkdocs build --strict failed:\n{r.stdout[-3000:]}\n{r.stderr[-5000:]}'
    print(f'mkdocs build --strict: {took:.1f} s')
    return tmp / 'site'


def test_every_module_has_an_api_page(site):
    "One API page per module of msa_nb/, with each public name of its __all__ rendered by mkdocstrings."
    import importlib
    mods = sorted(p.stem for p in (ROOT / 'msa_nb').glob('*.py') if not p.stem.startswith('_'))
    assert len(mods) >= 10, mods
    for m in mods:
        page = site / 'api' / m / 'index.html'
        assert page.exists(), f'no API page for msa_nb.{m}'
        html = page.read_text(encoding='utf-8')
        names = [n for n in getattr(importlib.import_module(f'msa_nb.{m}'), '__all__', []) if not n.isupper()]
        missing = [n for n in names if f'id="msa_nb.{m}.{n}"' not in html]
        assert not missing, f'api/{m}: not documented: {missing}'


def test_docments_become_parameter_tables(site):
    html = (site / 'api' / 'banded' / 'index.html').read_text(encoding='utf-8')
    assert 'one-sided window W: query i sees keys with |i - j| &lt;= W' in html   # band_mask's `window` docment


def test_hidden_cells_are_not_on_the_pages(site):
    "nbdev's `#| hide` cells (the Colab install cell, the folded `# checks:` cells) run in nbdev_test but are not shown."
    import json, re
    from html import unescape
    nb = json.loads((ROOT / 'nbs' / f'{CHAPTER}.ipynb').read_text(encoding='utf-8'))
    checks = [c for c in nb['cells'] if c['cell_type'] == 'code' and ''.join(c['source']).startswith('#| hide\n# checks:')]
    assert checks, f'{CHAPTER} has no hidden checking cell to look for'
    html = (site / CHAPTER / 'index.html').read_text(encoding='utf-8')
    assert 'Runs only inside Google Colab' not in html                 # the install cell's first comment
    text = unescape(re.sub(r'<[^>]+>', '', html))                       # the page as text, highlighting spans removed
    for c in checks:                                                    # each checking cell's `# checks: ...` line
        line = ''.join(c['source']).splitlines()[1]
        assert line not in text, line
    assert '<span class="nf">band_mask</span>' in html                   # a visible cell: the definition of the chapter's band_mask


@pytest.fixture(scope='module')
def server(site):
    port = _free_port()
    proc = subprocess.Popen([sys.executable, '-m', 'http.server', str(port), '--bind', '127.0.0.1', '--directory', str(site)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f'http://127.0.0.1:{port}/'
    try:
        deadline = time.time() + 20
        while True:
            try: urllib.request.urlopen(base, timeout=2).close(); break
            except Exception:
                if proc.poll() is not None or time.time() > deadline: raise RuntimeError('http.server did not start')
                time.sleep(0.2)
        yield base
    finally:
        proc.terminate()
        try: proc.wait(timeout=10)
        except subprocess.TimeoutExpired: proc.kill(); proc.wait()


def test_site_in_a_real_browser(server):
    _require(Path(CHROMIUM).exists(), f'Chromium not found at {CHROMIUM} (apt-get install -y chromium)')
    try: from playwright.sync_api import sync_playwright
    except ImportError: _require(False, 'playwright is not installed (pip install playwright; never `playwright install`)')
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    offsite, errors = [], []

    def guard(route):
        host = urlsplit(route.request.url).hostname
        if route.request.url.startswith(('data:', 'blob:')) or host == '127.0.0.1': route.continue_()
        else: offsite.append(route.request.url); route.abort()

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        try:
            ctx = browser.new_context(viewport={'width': 1280, 'height': 900}, service_workers='block')
            ctx.route('**/*', guard)
            page = ctx.new_page()
            page.on('console', lambda m: errors.append(f'{page.url}: console {m.type}: {m.text}') if m.type == 'error' else None)
            page.on('pageerror', lambda e: errors.append(f'{page.url}: page error: {e}'))

            # the landing page: the syllabus, with the chapters in the navigation
            page.goto(server, wait_until='load')
            assert 'Memory Sparse Attention' in page.title()
            assert page.locator('.jupyter-wrapper').count() == 1                       # the notebook itself
            nav = page.locator('nav.md-nav--primary').inner_text()
            for title in ('Part I', 'API reference', 'For teachers'): assert title in nav, nav[:500]
            page.locator(f'.jupyter-wrapper a[href^="{CHAPTER}/"]').first.click()       # the syllabus links to the chapter pages
            page.wait_for_load_state('load')
            assert page.url.rstrip('/').endswith(CHAPTER), page.url
            page.goto(server, wait_until='load'); page.screenshot(path=str(ARTIFACTS / 'site_landing.png'))

            # a chapter: a stored figure that loaded, and maths typeset by the locally served MathJax
            page.goto(f'{server}{CHAPTER}/', wait_until='load')
            page.wait_for_function('() => window.MathJax && MathJax.Hub && MathJax.Hub.queue.pending === 0 '
                                   '&& document.querySelectorAll(".MathJax, .MathJax_Display, .MathJax_SVG").length > 0',
                                   timeout=60_000)
            n_math = page.locator('.MathJax, .MathJax_SVG').count()
            assert n_math >= 5, n_math
            assert page.locator('.jupyter-wrapper').inner_text().count('$') < 4           # no raw TeX left over
            figs = page.locator('.jp-OutputArea-output img')
            assert figs.count() >= 1, 'no figure in the chapter'
            assert page.evaluate('Array.from(document.querySelectorAll(".jp-OutputArea-output img"))'
                                 '.every(i => i.complete && i.naturalWidth > 100)')
            page.screenshot(path=str(ARTIFACTS / 'site_chapter.png'))
            figs.first.scroll_into_view_if_needed(); page.screenshot(path=str(ARTIFACTS / 'site_chapter_figure.png'))

            # an API page generated from the docstrings, with the docments as a parameter table
            page.goto(f'{server}api/attention/', wait_until='load')
            assert page.locator('[id="msa_nb.attention.masked_softmax"]').count() == 1
            assert page.locator('table').count() >= 1
            page.screenshot(path=str(ARTIFACTS / 'site_api.png'))

            # search: the index is served by the site, the results link to chapters
            page.goto(server, wait_until='load')
            page.locator('label.md-search__icon, .md-search__input').first.click()
            page.locator('input.md-search__input').fill('boundary')
            page.wait_for_selector('.md-search-result__item', timeout=20_000)
            assert page.locator('.md-search-result__item').count() >= 1
            page.screenshot(path=str(ARTIFACTS / 'site_search.png'))

            # the seminar kit is part of the site
            page.goto(f'{server}teaching/seminar/', wait_until='load')
            assert 'Seminar' in page.title()
        finally:
            browser.close()
    assert not offsite, f'requests to other hosts: {sorted(set(offsite))[:10]}'
    assert not errors, '\n'.join(errors[:20])
