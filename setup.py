"""Package set-up. Every piece of metadata comes from settings.ini (the single source of truth)."""
from configparser import ConfigParser
import setuptools
from pathlib import Path

here = Path(__file__).parent
config = ConfigParser(delimiters=['='])
config.read(here/'settings.ini', encoding='utf-8')
cfg = config['DEFAULT']

licenses = {'apache2': 'Apache-2.0', 'mit': 'MIT'}  # SPDX expressions (licence classifiers are deprecated)
statuses = ['1 - Planning', '2 - Pre-Alpha', '3 - Alpha', '4 - Beta', '5 - Production/Stable', '6 - Mature', '7 - Inactive']
py_versions = '3.10 3.11 3.12 3.13'.split()  # torch 2.13 has wheels for Python 3.10+ only

lic = licenses[cfg['license'].lower()]
min_python = cfg['min_python']
requirements = cfg.get('requirements', '').split()
dev_requirements = cfg.get('dev_requirements', '').split()
voila_requirements = cfg.get('voila_requirements', '').split()  # optional: the explorer as a standalone page
docs_requirements = cfg.get('docs_requirements', '').split()    # optional: the website (mkdocs build) and executing the chapters
readme = here/'README.md'

setuptools.setup(
    name=cfg['lib_name'],
    version=cfg['version'],
    description=cfg['description'],
    long_description=readme.read_text(encoding='utf-8') if readme.exists() else cfg['description'],
    long_description_content_type='text/markdown',
    author=cfg['author'],
    author_email=cfg['author_email'],
    url=cfg['git_url'],
    license=lic,
    license_files=['LICENSE'],
    keywords=cfg['keywords'].split(),
    classifiers=['Development Status :: ' + statuses[int(cfg['status'])],
                 'Intended Audience :: ' + cfg['audience'].title(),
                 'Natural Language :: ' + cfg['language'].title()] +
                ['Programming Language :: Python :: ' + v for v in py_versions[py_versions.index(min_python):]],
    # The stored results in data/ ship inside the package as msa_nb/data/ (msa_nb.core.stored_path finds them there).
    packages=setuptools.find_packages(include=[cfg['lib_name'], cfg['lib_name'] + '.*']) + [cfg['lib_name'] + '.data'],
    package_dir={cfg['lib_name'] + '.data': 'data'},
    package_data={cfg['lib_name'] + '.data': ['*.pt', '*.json', '*.csv']},
    include_package_data=True,
    install_requires=requirements,
    extras_require={'dev': dev_requirements, 'voila': voila_requirements, 'docs': docs_requirements},
    python_requires='>=' + min_python,
    zip_safe=False,
    entry_points={'nbdev': [f"{cfg['lib_path']}={cfg['lib_path']}._modidx:d"]},
)
