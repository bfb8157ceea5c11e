"""The one reader of nbdev's `#|` cell directives that the course's scripts share (check_outputs, execute_course,
count_chars, mkdocs_hooks): nbdev's own parser, `nbdev.process.extract_directives`, so a cell means to these scripts
exactly what it means to `nbdev_test` and `nbdev_export`."""
import copy
from fastcore.basics import AttrDict
from nbdev.process import extract_directives


def directives(cell)->dict:
    "{directive: [args]} of a code cell's leading `#|` lines (a markdown cell has none); the cell is not modified."
    if cell.get('cell_type', 'code') != 'code': return {}
    src = cell.get('source', '')
    return extract_directives(AttrDict(cell_type='code', source=''.join(src) if isinstance(src, list) else src), remove=False)


def flags(cell)->set:
    "The directive names of a code cell: {'hide'}, {'notest'}, {'export'}, {'gpu'}, ..."
    return set(directives(cell))


def is_hidden(cell)->bool:
    "A code cell flagged `#| hide`: run by nbdev_test, left off the website, folded in JupyterLab (checking cells)."
    return 'hide' in directives(cell)
