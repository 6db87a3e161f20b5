"""Every Python snippet of the README's "Use it from LangChain" section runs as written (against the fake
OpenAI-compatible server, over the sample papers)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT, SAMPLE_DOCS
from tests.fake_openai import fake_openai_server

pytestmark = pytest.mark.integration

#: The fake model cites nothing: the chain attributes each sentence to the excerpts that say it.
ANSWER = "The QRNNs were trained on a Titan V GPU."
CHECKED = "The QRNNs were trained on a Titan V GPU ["


def snippets() -> list[str]:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = re.search(r"## Use it from LangChain\n(.+?)\n## ", readme, flags=re.S).group(1)
    return re.findall(r"```python\n(.+?)```", section, flags=re.S)


#: For each snippet (found by a phrase in it): the fake model's replies, and what its output must show.
CASES: dict[str, tuple[list[dict[str, Any]], list[str]]] = {
    "create_qa_chain(retriever, llm=ChatOpenAI": (
        [{"content": "The model was implemented with Detectron2 in the PyTorch framework."}],
        ["The model was implemented with Detectron2 in the PyTorch framework [",
         "] Detection and annotation of plant organs from digitised herbarium scans"],
    ),
    "InMemoryVectorStore": ([], ["TITAN Xp GPU"]),
    "index_paths(index": ([], ["added", "lab-notes.txt", "tang2018_neural_language_model_tradeoffs.md"]),
    "create_agent": (
        [{"tool_calls": [{"name": "ask_papers", "arguments": {"question": "Which GPU were the QRNNs trained on?"}}]},
         {"content": ANSWER}, {"content": "A Titan V GPU, say the papers."}],
        ["A Titan V GPU, say the papers."],
    ),
    "RunnableWithMessageHistory": (
        [{"content": ANSWER}, {"content": "Which framework were the QRNNs trained with?"}, {"content": "PyTorch."}],
        [CHECKED, "PyTorch ["],
    ),
    "astream_events": ([{"content": ANSWER}], [ANSWER, "sources: ['tang2018_neural_language_model_tradeoffs.md'"]),
}


def test_every_snippet_has_a_case() -> None:
    found = snippets()
    assert len(found) == len(CASES)
    assert all(sum(key in code for code in found) == 1 for key in CASES)
    assert len(found[0].strip().splitlines()) <= 10  # the first example stays short


@pytest.mark.parametrize("key", list(CASES))
def test_readme_snippet_runs(key: str, sample_index: Any, tmp_path: Path) -> None:
    code = next(c for c in snippets() if key in c)
    replies, expected = CASES[key]
    (tmp_path / "papers").mkdir()
    shutil.copy(SAMPLE_DOCS / "tang2018_neural_language_model_tradeoffs.md", tmp_path / "papers")
    with fake_openai_server() as server:
        server.replies = list(replies)
        env = {
            "PATH": "/usr/bin:/bin",
            "OPENAI_BASE_URL": server.base_url,
            "OPENAI_API_KEY": "sk-test",
            "PAPERCHAT_DB": str(sample_index.settings.db),
            "PAPERCHAT_COLLECTION": sample_index.settings.collection,
        }
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300,
                              cwd=tmp_path)
        requests = server.chat_requests()
    assert done.returncode == 0, done.stderr[-3000:]
    for text in expected:
        assert text in done.stdout, (text, done.stdout)
    assert len(requests) == len(replies)  # every scripted reply was asked for, no more
    if key == "create_agent":  # the tool's answer and sources reached the agent's model
        assert CHECKED in json.dumps(requests[-1]["body"]["messages"])
