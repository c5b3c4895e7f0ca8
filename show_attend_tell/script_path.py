"""Lets the repository's scripts run by path as well as by module name, from the repository root.

`python -m training.train` puts the current folder (the repository root) first on `sys.path`, so `import training.x`
works; `python training/train.py` and `accelerate launch training/train.py` put the script's own folder (`training/`)
there instead, and `import training.x` fails. A script in a package folder of the repository imports this module
before its own packages:

    import show_attend_tell.script_path  # noqa: F401  (runs by path too: see its docstring)
    from training.args import parse_args

When the running script was started by path from a package folder (a folder with an `__init__.py`), the folder above
that package takes the script folder's place on `sys.path`, exactly as `python -m` would have it; otherwise (started
with `-m`, an interactive session, pytest) nothing changes. This is the only `sys.path` edit of the project
(tests/test_layers.py). The library itself needs none of it: it is installed, and imports nothing above itself.
"""

from __future__ import annotations

import sys
from pathlib import Path


def _put_script_package_root_first() -> None:
    main = sys.modules.get("__main__")
    if getattr(main, "__spec__", None) is not None or not getattr(main, "__file__", None):
        return  # started with `python -m` (whose first sys.path entry is already the root), or no script at all
    script_folder = Path(main.__file__).resolve().parent
    if not (script_folder / "__init__.py").is_file():
        return
    root = str(script_folder.parent)
    if sys.path and Path(sys.path[0] or ".").resolve() == script_folder:
        sys.path[0] = root
    elif root not in sys.path:
        sys.path.insert(0, root)


_put_script_package_root_first()
