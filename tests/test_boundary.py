"""The folder boundary is the architecture: the engine never imports Qt, nor does the window's session model."""

from __future__ import annotations

import pkgutil
import re
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
    return ["swimsearch"] + [m.name for m in pkgutil.walk_packages(swimsearch.__path__, "swimsearch.")]


def test_engine_imports_with_qt_unimportable():
    modules = engine_modules()
    assert "swimsearch.images" in modules and "swimsearch.model" in modules and "swimsearch.stores.sqlite" in modules
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
    for path in (REPO / "swimsearch").rglob("*.py"):
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


# --- the contracts in setup.cfg: layers, no cycles, and a type check ----------------------

LINT_IMPORTS = "import sys; from importlinter.cli import lint_imports_command; sys.exit(lint_imports_command())"


def lint_imports(root, env=None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", LINT_IMPORTS, "--config", str(root / "setup.cfg"), "--no-cache"],
        cwd=root, capture_output=True, text=True, timeout=300, env=env,
    )


def test_import_contracts_hold():
    """Engine and session model without Qt; stores below search and build; the layers; no import cycle."""
    result = lint_imports(REPO)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout and "5 kept" in result.stdout


def test_import_contracts_catch_a_store_importing_the_search_and_a_cycle(tmp_path):
    import os
    import shutil

    for name in ("swimsearch", "ui"):
        shutil.copytree(REPO / name, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "setup.cfg", tmp_path / "setup.cfg")
    with open(tmp_path / "swimsearch" / "stores" / "base.py", "a", encoding="utf-8") as fh:
        fh.write("\nfrom ..search import SearchEngine  # noqa\n")  # a store reaching up, and a cycle
    result = lint_imports(tmp_path, env={**os.environ, "PYTHONPATH": str(tmp_path)})
    assert result.returncode != 0
    assert "Stores never import the search" in result.stdout and "BROKEN" in result.stdout
    assert "No import cycles" in result.stdout


def test_engine_type_checks_clean():
    """mypy with the [mypy] settings of setup.cfg finds nothing in swimsearch/."""
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--cache-dir", str(REPO / ".mypy_cache")],
        cwd=REPO, capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Success: no issues found" in result.stdout


def test_engine_modules_stay_small_and_the_catalogue_a_handle():
    """Engine modules under 400 lines (the house rule); the Catalogue class under 200."""
    import inspect

    from swimsearch.catalogue import Catalogue

    for path in (REPO / "swimsearch").rglob("*.py"):
        lines = len(path.read_text(encoding="utf-8").splitlines())
        assert lines < 400, f"{path.relative_to(REPO)} has {lines} lines: split it by role"
    assert len(inspect.getsourcelines(Catalogue)[0]) < 200


def test_the_window_stays_small():
    """ui/main_window.py under 450 lines (issue 10): new window parts go to their own ui module."""
    lines = len((REPO / "ui" / "main_window.py").read_text(encoding="utf-8").splitlines())
    assert lines < 450, f"ui/main_window.py has {lines} lines: move a part of the window to its own ui module"


SQL = re.compile(r"""["']\s*(SELECT|INSERT|UPDATE|DELETE|CREATE|DROP|ALTER|PRAGMA|BEGIN|COMMIT)\s""")


def test_no_sql_outside_the_stores():
    """Only swimsearch/stores/ speaks SQL or opens a database (issue 10): the rest goes through the store protocols."""
    sources = [p for p in (REPO / "swimsearch").rglob("*.py") if "stores" not in p.relative_to(REPO).parts]
    sources += [*(REPO / "ui").rglob("*.py"), REPO / "app.py"]
    offenders = []
    for path in sources:
        text = path.read_text(encoding="utf-8")
        if SQL.search(text) or re.search(r"^\s*(import|from)\s+(sqlite3|psycopg)", text, re.M):
            offenders.append(str(path.relative_to(REPO)))
    assert offenders == []


def test_the_architecture_page_names_every_module():
    """docs/ARCHITECTURE.md gives every module of the engine and the window its line (issue 10)."""
    page = (REPO / "docs" / "ARCHITECTURE.md").read_text(encoding="utf-8")
    missing = []
    for package in ("swimsearch", "ui"):
        for path in sorted((REPO / package).rglob("*.py")):
            if path.name == "__init__.py":
                continue
            name = path.relative_to(REPO / package).as_posix()
            shown = f"`ui/{name}`" if package == "ui" else f"`{name}`"
            if shown not in page:
                missing.append(f"{package}/{name}")
    assert missing == [], f"docs/ARCHITECTURE.md does not name {', '.join(missing)}"
