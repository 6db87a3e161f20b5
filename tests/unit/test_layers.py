"""Layers import one way: ``paperchat.vectorstore`` (parsing, chunking, embedding, Chroma) never imports the
upper layer (``paperchat`` itself: the chain, prompts, answerers, CLI) or the UI."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT


def _imports(path: Path) -> list[str]:
    names: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
    return names


def test_vectorstore_never_imports_the_upper_layers() -> None:
    offenders = []
    for path in sorted((ROOT / "vectorstore").glob("*.py")):
        for name in _imports(path):
            if name == "paperchat" or (name.startswith("paperchat.") and not name.startswith("paperchat.vectorstore")):
                offenders.append(f"{path.name}: {name}")
    assert offenders == []


def test_the_plugin_never_imports_the_ui() -> None:
    offenders = [
        f"{path.name}: {name}"
        for path in sorted((ROOT / "plugin").glob("*.py"))
        for name in _imports(path)
        if name.startswith("paperchat.ui")
    ]
    assert offenders == []


@pytest.mark.integration  # fresh interpreters, outside the checkout
def test_no_top_level_layer_packages(tmp_path: Path) -> None:
    """The installed distribution exposes ``paperchat`` only (checked outside the checkout, whose folders
    would otherwise be found as namespace packages)."""
    code = "import importlib.util as u; print([n for n in ('plugin', 'vectorstore', 'ui') if u.find_spec(n)])"
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
    done = subprocess.run([sys.executable, "-c", "import paperchat.vectorstore, paperchat.ui"], cwd=tmp_path, check=False)
    assert done.returncode == 0
