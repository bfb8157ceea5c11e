"""MkDocs hooks for the course website (loaded by mkdocs.yml `hooks:`).

- the chapters are read where they live, in nbs/ (or in the folder named by the environment variable MSA_NB_SITE_NBS,
  which the site test uses for an executed copy); the syllabus nbs/index.ipynb is the landing page; the pages show
  each notebook without its `#| hide` cells (the Colab install cell, the folded checking cells that `nbdev_test` runs):
  a copy without them is written to a temporary folder and rendered from there;
- one API page per module of msa_nb/ (`::: msa_nb.<module>`, rendered by mkdocstrings), new modules included;
- the navigation is built from the notebooks and modules present (Part I: chapters 1-11, Part II: 12 on);
- MathJax 2 is served from the site itself (copied from the `jupyter-server-mathjax` package), the Colab badges are
  drawn locally, links between notebooks (`03_chunked.ipynb#...`) point at the chapter pages;
- after the build, every page is checked: nothing may be fetched from another host, and every relative link and
  resource must exist in the site. Either failure stops the build.
"""
import json, os, re, shutil, sys, tempfile
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urlsplit, unquote

from mkdocs.exceptions import PluginError
from mkdocs.plugins import event_priority
from mkdocs.structure.files import File
from mkdocs.utils import get_relative_url

sys.path.insert(0, str(Path(__file__).resolve().parent))   # mkdocs loads this file by path
import nbdirectives

ROOT = Path(__file__).resolve().parents[1]
MATHJAX = 'assets/mathjax/MathJax.js?config=TeX-AMS-MML_HTMLorMML-full,Safe'
# MathJax 2 as the jupyter-server-mathjax package ships it: HTML-CSS output with the STIX-Web fonts (the only ones in
# it), and its font-probe face pointed at a local() name instead of about:blank (a URL Chrome refuses, with an error).
FONT_CONFIG = ('<script type="text/x-mathjax-config">MathJax.Hub.Config({"HTML-CSS": {availableFonts: [], '
               'webFont: "STIX-Web", preferredFont: null, imageFont: null, styles: {"@font-face": '
               '{"font-family": "MathJax_Blank", src: "local(\'MathJax_Blank\')"}}}, messageStyle: "none"});</script>')
# mkdocs.yml sets mkdocs-jupyter's custom_mathjax_url to a placeholder; each page gets its relative path to the local copy
LOAD_MATHJAX = re.compile(r'<script src="(?:msa-nb-local-mathjax|https?://[^"]*mathjax[^"]*)">\s*</script>', re.I)
COLAB_IMG = re.compile(r'<img[^>]*src="https://colab\.research\.google\.com/assets/colab-badge\.svg"[^>]*/?>', re.I)
MERMAID = re.compile(r'<script type="module">(?:(?!</script>).)*?ajax/libs/mermaid(?:(?!</script>).)*?</script>', re.S)
INLINE_FETCH = re.compile(r'''(?:import\s*\(\s*|from\s*|fetch\s*\(\s*|src\s*=\s*)["']https?://''')
NB_LINK = re.compile(r'href="(?![a-z][a-z0-9+.-]*:|/|#)([^"#?]+\.ipynb)(#[^"]*)?"', re.I)


_SHOWN = None   # the temporary folder of the notebooks without their hidden cells, during a build


def nbs_dir():
    "Where the chapters are read from."
    return Path(os.environ.get('MSA_NB_SITE_NBS', ROOT / 'nbs')).resolve()


def chapters():
    "The notebooks of the course, index first, then in file-name order (01_..., 03b_..., 12_..., explorer)."
    nbs = sorted(p.name for p in nbs_dir().glob('*.ipynb') if not p.name.startswith(('_', '.')))
    return (['index.ipynb'] if 'index.ipynb' in nbs else []) + [n for n in nbs if n != 'index.ipynb']


is_hidden = nbdirectives.is_hidden  # a code cell flagged `#| hide`: run by nbdev_test, not shown on the website


def without_hidden(src:Path, dest:Path):
    "Copy the notebook `src` to `dest` without its `#| hide` cells."
    nb = json.loads(src.read_text(encoding='utf-8'))
    nb['cells'] = [c for c in nb['cells'] if not is_hidden(c)]
    dest.write_text(json.dumps(nb, indent=1, ensure_ascii=False), encoding='utf-8')


def modules():
    "Every public module of the library (msa_nb/<name>.py)."
    return sorted(p.stem for p in (ROOT / 'msa_nb').glob('*.py') if not p.stem.startswith('_'))


def _number(name):
    m = re.match(r'(\d+)', name)
    return int(m.group(1)) if m else None


def on_config(config):
    "The navigation, from what is present: nothing to edit when a chapter or a module is added."
    nbs = chapters()
    part1 = [n for n in nbs if _number(n) is not None and _number(n) <= 11]
    part2 = [n for n in nbs if _number(n) is not None and _number(n) >= 12]
    extra = [n for n in nbs if _number(n) is None and n != 'index.ipynb']
    nav = [{'Home': 'index.ipynb'}] if 'index.ipynb' in nbs else []
    nav.append({'Part I: the MSA layer': part1})
    if part2: nav.append({'Part II: memory at scale': part2})
    if extra: nav.append({'Explorer': extra})
    nav.append({'API reference': [f'api/{m}.md' for m in modules()]})
    nav.append({'For teachers': ['teaching/index.md', 'teaching/seminar.md']})
    config['nav'] = nav
    return config


@event_priority(100)  # before mkdocs-jupyter's on_files, so that it renders these notebooks too
def on_files(files, config):
    src = nbs_dir()
    global _SHOWN
    shown = _SHOWN = Path(tempfile.mkdtemp(prefix='msa_nb_site_nbs_'))   # the notebooks as the pages show them (removed after the build)
    for name in chapters():
        without_hidden(src / name, shown / name)
        files.append(File(name, src_dir=str(shown), dest_dir=config['site_dir'],
                          use_directory_urls=config['use_directory_urls']))
    for m in modules():
        files.append(File.generated(config, f'api/{m}.md',
                                    content=f'# `msa_nb.{m}`\n\n::: msa_nb.{m}\n'))
    return files


def on_page_content(html, page, config, files):
    "Local MathJax and badges in the notebook pages; links to notebooks become links to their pages."
    if not page.file.src_path.endswith('.ipynb'): return html
    html = LOAD_MATHJAX.sub(lambda m: FONT_CONFIG + f'<script src="{get_relative_url(MATHJAX, page.url)}"></script>', html)
    html = MERMAID.sub('', html)   # nbconvert's Mermaid loader imports from a CDN; the course draws no Mermaid diagrams
    html = COLAB_IMG.sub('<span class="colab-badge">Open in Colab</span>', html)

    def link(m):
        target = files.get_file_from_path(m.group(1))
        if target is None:
            raise PluginError(f'{page.file.src_path}: link to {m.group(1)}, which is not a page of the site')
        return f'href="{target.url_relative_to(page.file)}{m.group(2) or ""}"'
    return NB_LINK.sub(link, html)


def on_post_page(output, page, config):
    "Markdown pages with maths (pymdownx.arithmatex) load the same local MathJax."
    if 'type="math/tex' in output and 'MathJax.js' not in output:
        output = output.replace('</body>', FONT_CONFIG + f'<script src="{get_relative_url(MATHJAX, page.url)}"></script></body>')
    return output


def on_post_build(config):
    if _SHOWN is not None: shutil.rmtree(_SHOWN, ignore_errors=True)
    import jupyter_server_mathjax
    static = Path(jupyter_server_mathjax.__file__).parent / 'static'
    dest = Path(config['site_dir']) / 'assets' / 'mathjax'
    if dest.exists(): shutil.rmtree(dest)
    shutil.copytree(static, dest)
    problems = check_site(Path(config['site_dir']), urlsplit(config['site_url'] or '/').path)
    if problems:
        raise PluginError(f'{len(problems)} problem(s) in the built site:\n  ' + '\n  '.join(problems[:40]))


class _Refs(HTMLParser):
    "Collect (tag, attribute, value, rel) of everything a page fetches or links to."
    FETCH = {('script', 'src'), ('img', 'src'), ('iframe', 'src'), ('source', 'src'), ('audio', 'src'),
             ('video', 'src'), ('embed', 'src'), ('object', 'data')}

    def __init__(self):
        super().__init__(); self.refs = []; self._in_script = False

    def handle_endtag(self, tag):
        if tag == 'script': self._in_script = False

    def handle_data(self, data):
        if self._in_script:
            for m in INLINE_FETCH.finditer(data): self.refs.append(('fetch', 'script (inline)', data[m.end() - 8:m.end() + 60]))

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == 'script' and not a.get('src'): self._in_script = True
        for (t, attr) in self.FETCH:
            if tag == t and attr in a: self.refs.append(('fetch', tag, a[attr] or ''))
        if tag == 'link' and a.get('href'):
            rel = (a.get('rel') or '').lower()
            self.refs.append(('fetch' if rel not in ('canonical', 'alternate') else 'skip', tag, a['href']))
        if tag == 'a' and a.get('href'): self.refs.append(('link', tag, a['href']))


def check_site(site, base='/'):
    "Problems in a built site: resources from other hosts, links or resources that do not exist (`base`: the site's root path)."
    problems = []
    for page in sorted(site.rglob('*.html')):
        p = _Refs(); p.feed(page.read_text(encoding='utf-8', errors='replace'))
        rel_page = page.relative_to(site)
        for kind, tag, url in p.refs:
            if kind == 'skip': continue
            if kind == 'fetch' and not url.strip():
                problems.append(f'{rel_page}: <{tag}> with an empty address'); continue
            parts = urlsplit(url)
            if parts.scheme in ('http', 'https') or url.startswith('//'):
                if kind == 'fetch': problems.append(f'{rel_page}: <{tag}> fetches {url} from another host')
                continue
            if parts.scheme or not parts.path: continue   # mailto:, data:, javascript:, '#anchor'
            path = unquote(parts.path)
            if path.startswith('/'):   # the 404 page links from the site's root
                if not path.startswith(base.rstrip('/') + '/'):
                    problems.append(f'{rel_page}: <{tag}> points at {url}, outside the site'); continue
                target = (site / path[len(base.rstrip('/')) + 1:]).resolve()
            else: target = (page.parent / path).resolve()
            if parts.path.endswith('/') or target.is_dir(): target = target / 'index.html'
            if not target.exists():
                problems.append(f'{rel_page}: <{tag}> points at {url}, which is not in the site')
    return problems
