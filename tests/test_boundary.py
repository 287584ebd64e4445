"""The folder boundary is the architecture: the engine never imports Qt."""

from __future__ import annotations

import pkgutil
import subprocess
import sys

import swimsearch
from helpers import REPO

BLOCK_QT = """
import importlib.abc, sys
class BlockQt(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in ('PyQt5', 'PyQt6', 'PySide2', 'PySide6', 'sip'):
            raise ImportError(f'{name} is blocked: the engine must not import Qt')
sys.meta_path.insert(0, BlockQt())
import importlib
for name in sys.argv[1:]:
    importlib.import_module(name)
print('ok', len(sys.argv) - 1)
"""


def engine_modules() -> list[str]:
    return ["swimsearch"] + [f"swimsearch.{m.name}" for m in pkgutil.iter_modules(swimsearch.__path__)]


def test_engine_imports_with_qt_unimportable():
    modules = engine_modules()
    assert "swimsearch.images" in modules and "swimsearch.model" in modules
    result = subprocess.run(
        [sys.executable, "-c", BLOCK_QT, *modules], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"ok {len(modules)}"


def test_the_block_really_blocks_qt():
    result = subprocess.run(
        [sys.executable, "-c", BLOCK_QT, "PyQt5.QtCore"], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert result.returncode != 0 and "blocked" in result.stderr


def test_engine_sources_never_mention_qt():
    for path in (REPO / "swimsearch").glob("*.py"):
        text = path.read_text(encoding="utf-8")
        assert "PyQt5" not in text and "from ui" not in text and "import ui" not in text, path.name
