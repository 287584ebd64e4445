"""The folder boundary is the architecture: the engine never imports Qt, nor does the window's session model."""

from __future__ import annotations

import pkgutil
import subprocess
import sys

import swimsearch
from helpers import REPO

BLOCKER = """
import importlib.abc, sys
class BlockQt(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in ('PyQt5', 'PyQt6', 'PySide2', 'PySide6', 'sip'):
            raise ImportError(f'{name} is blocked: this code must not import Qt')
sys.meta_path.insert(0, BlockQt())
"""
BLOCK_QT = BLOCKER + """
import importlib
for name in sys.argv[1:]:
    importlib.import_module(name)
print('ok', len(sys.argv) - 1)
"""


#: The window's Qt-free half: the session model and what it is made of.
SESSION_MODULES = ["ui.formatting", "ui.queries", "ui.history", "ui.session_types", "ui.session"]


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


def test_the_session_model_imports_with_qt_unimportable():
    result = subprocess.run(
        [sys.executable, "-c", BLOCK_QT, *SESSION_MODULES], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"ok {len(SESSION_MODULES)}"
    for name in SESSION_MODULES:
        text = (REPO / (name.replace(".", "/") + ".py")).read_text(encoding="utf-8")
        assert "PyQt5" not in text, name


def test_the_session_models_tests_pass_with_qt_unimportable():
    """Its unit tests (and the queries') run in a process where PyQt5 cannot be imported (pytest-qt left out)."""
    tests = ["tests/test_session.py", "tests/test_queries.py"]
    run_tests = BLOCKER + f"import pytest; sys.exit(pytest.main(['-q', '-p', 'no:pytest-qt', *{tests!r}]))"
    result = subprocess.run([sys.executable, "-c", run_tests], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert " passed" in result.stdout and "PyQt5" not in result.stdout
