"""The ``digest.editions`` package keeps its promises: every public name of its modules is importable from the
package itself (callers such as ``digest.send`` use ``editions.X``), and its modules depend on each other only
in the order its docstring gives, so none of them grows back into a hub."""

from __future__ import annotations

import ast
import importlib
import inspect
from pathlib import Path

from digest import editions

# The order of the package docstring: a module may import only those before it.
ORDER = ["dates", "window", "history", "lifecycle", "selection", "variants"]
PACKAGE = Path(editions.__file__).parent


def _defined_here(module_name: str) -> set[str]:
    """Public functions, classes and constants the module defines (not what it imports)."""
    module = importlib.import_module(f"digest.editions.{module_name}")
    tree = ast.parse(inspect.getsource(module))
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
    return {n for n in names if not n.startswith("_")}


def test_every_module_is_in_the_documented_order() -> None:
    on_disk = {p.stem for p in PACKAGE.glob("*.py")} - {"__init__"}
    assert on_disk == set(ORDER)
    for name in ORDER:
        assert f"``{name}``" in (editions.__doc__ or "")


def test_every_public_name_is_re_exported_as_the_same_object() -> None:
    for module_name in ORDER:
        module = importlib.import_module(f"digest.editions.{module_name}")
        for name in _defined_here(module_name):
            assert name in editions.__all__, f"digest.editions.{module_name}.{name} is not re-exported"
            assert getattr(editions, name) is getattr(module, name)
    assert sorted(editions.__all__) == sorted(set(editions.__all__))


def test_modules_import_only_the_ones_before_them() -> None:
    for position, module_name in enumerate(ORDER):
        tree = ast.parse((PACKAGE / f"{module_name}.py").read_text(encoding="utf-8"))
        imported = {node.module.rsplit(".", 1)[1] for node in ast.walk(tree)
                    if isinstance(node, ast.ImportFrom) and node.module
                    and node.module.startswith("digest.editions.")}
        allowed = set(ORDER[:position])
        assert imported <= allowed, f"{module_name} imports {sorted(imported - allowed)}, which come after it"
