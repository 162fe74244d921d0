"""The public API: every exported name resolves, and no submodule shadows an export."""

from __future__ import annotations

import importlib
import pkgutil
import subprocess
import sys
import types

import metaally as ma


def test_every_export_resolves_to_a_non_module():
    for name in ma.__all__:
        assert not isinstance(getattr(ma, name), types.ModuleType), name


def test_importing_every_submodule_leaves_exports_intact():
    for info in pkgutil.walk_packages(ma.__path__, prefix="metaally."):
        if info.name != "metaally.__main__":
            importlib.import_module(info.name)
    for name in ma.__all__:
        assert not isinstance(getattr(ma, name), types.ModuleType), name


def test_no_submodule_is_named_like_an_export():
    submodules = {info.name.rsplit(".", 1)[-1] for info in pkgutil.iter_modules(ma.__path__)}
    assert submodules.isdisjoint(ma.__all__)


def test_plain_import_loads_neither_matplotlib_nor_pandas():
    code = ("import sys, metaally; "
            "print(sorted({'matplotlib', 'pandas', 'scipy'} & set(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_each_export_is_declared_once_and_comes_from_the_module_that_defines_it():
    import ast
    from pathlib import Path

    tree = ast.parse(Path(ma.__file__).read_text())
    table = next(node.value for node in tree.body if isinstance(node, ast.AnnAssign)
                 and getattr(node.target, "id", "") == "_EXPORTS")
    keys = [k.value for k in table.keys]
    assert len(keys) == len(set(keys)), sorted({k for k in keys if keys.count(k) > 1})
    for name, module in ma._EXPORTS.items():
        assert name in getattr(importlib.import_module(module), "__all__", [name]), (name, module)


def test_every_module_declares_its_public_names():
    for info in pkgutil.walk_packages(ma.__path__, prefix="metaally."):
        if info.name.endswith("__main__") or info.ispkg:
            continue
        assert hasattr(importlib.import_module(info.name), "__all__"), info.name
