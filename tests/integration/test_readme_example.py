"""The README's LangChain example runs as written (against a fake OpenAI-compatible server)."""

from __future__ import annotations

import re
import subprocess
import sys
from typing import Any

import pytest

from tests.conftest import ROOT
from tests.fake_openai import fake_openai_server

pytestmark = pytest.mark.integration


def test_langchain_example_runs(sample_index: Any) -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    code = re.search(r"## Use it from LangChain.*?```python\n(.+?)```", readme, flags=re.S).group(1)
    assert len(code.strip().splitlines()) <= 10
    with fake_openai_server() as server:
        server.default = {"content": "The model was implemented with Detectron2 in the PyTorch framework [1]."}
        env = {
            "PATH": "/usr/bin:/bin",
            "OPENAI_BASE_URL": server.base_url,
            "OPENAI_API_KEY": "sk-test",
            "PAPERCHAT_DB": str(sample_index.settings.db),
            "PAPERCHAT_COLLECTION": sample_index.settings.collection,
        }
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "The model was implemented with Detectron2 in the PyTorch framework [1]."
    assert lines[1].startswith("[1] Detection and annotation of plant organs from digitised herbarium scans")
    assert len(server.chat_requests()) == 1
