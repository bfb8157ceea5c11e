"""Griffe extension for the API pages: turn fastcore docments (a `# comment` after each parameter) into a docstring
"Args:" / "Returns:" section that mkdocstrings renders as a table.

The comments are read by `fastcore.docments.docments` (the library nbdev itself uses) on the imported object; this file
only hands them to griffe. Loaded from mkdocs.yml (`plugins: mkdocstrings: handlers: python: options: extensions`).
"""
import importlib, inspect, re
import griffe
from fastcore.docments import docments

_EMPTY = inspect.Parameter.empty


def _runtime(path):
    "The live object at dotted `path` (module, then attributes), or None."
    parts = path.split('.')
    for i in range(len(parts), 0, -1):
        try: obj = importlib.import_module('.'.join(parts[:i]))
        except ImportError: continue
        try:
            for p in parts[i:]: obj = getattr(obj, p)
        except AttributeError: return None
        return obj
    return None


def _section(title, rows):
    return f'\n\n{title}:\n' + '\n'.join(f'    {r}' for r in rows)


def _cli(obj):
    "Command-line usage such as `[--out FILE]` is not a markdown link: escape the bracket."
    if obj.docstring: obj.docstring.value = re.sub(r'\[(?=-)', r'\\[', obj.docstring.value)


class Docments(griffe.Extension):
    "Append the docments of each function (and method) to its docstring, unless it already documents its parameters."

    def on_module_instance(self, *, node, mod, agent, **kwargs): _cli(mod)
    def on_class_instance(self, *, node, cls, agent, **kwargs): _cli(cls)

    def on_function_instance(self, *, node, func, agent, **kwargs):
        _cli(func)
        obj = _runtime(func.path)
        if obj is None or not callable(obj): return
        try: d = docments(obj, full=True)
        except Exception: return   # builtins, C functions, objects without source
        ret = d.pop('return', None)
        args = [f'{k}: {v["docment"]}' for k, v in d.items() if k not in ('self', 'cls') and v.get('docment')]
        value = func.docstring.value if func.docstring else ''
        if 'Args:' in value or 'Returns:' in value: return
        extra = (_section('Args', args) if args else '') + (_section('Returns', [ret['docment']]) if ret and ret.get('docment') else '')
        if not extra: return
        if func.docstring: func.docstring.value = value + extra
        else: func.docstring = griffe.Docstring(extra.lstrip('\n'), parent=func)
