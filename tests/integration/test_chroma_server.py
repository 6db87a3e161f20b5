"""Indexing and querying through a real Chroma server started with ``chroma run``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from paperchat.cli import main
from paperchat.vectorstore.index import PaperIndex
from paperchat.vectorstore.settings import Settings
from tests.conftest import SAMPLE_DOCS
from tests.integration.chroma_server import chroma_executable, chroma_server

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(chroma_executable() is None, reason="chroma CLI not installed"),
]


def test_index_and_search_through_chroma_server(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with chroma_server(tmp_path / "server-data") as port:
        server = ("--chroma-host", "127.0.0.1", "--chroma-port", str(port))
        assert main(["index", str(SAMPLE_DOCS), *server, "--json"]) == 0
        report = json.loads(capsys.readouterr().out)
        assert report["counts"]["failed"] == 0 and report["chunks"] > 0

        assert main(["search", "Raspberry Pi energy latency perplexity", *server, "--json", "--k", "2"]) == 0
        hits = json.loads(capsys.readouterr().out)
        assert hits[0]["file"] == "tang2018_neural_language_model_tradeoffs.md"

        index = PaperIndex.open(Settings(chroma_host="127.0.0.1", chroma_port=port))
        assert index.count_chunks() == report["chunks"]
        assert not (tmp_path / "db").exists()  # nothing went to a local folder

        assert main(["index", str(SAMPLE_DOCS), *server, "--json"]) == 0
        assert json.loads(capsys.readouterr().out)["counts"]["unchanged"] == report["counts"]["added"]


def test_unreachable_server_is_a_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    from tests.conftest import free_port

    assert main(["list", "--chroma-host", "127.0.0.1", "--chroma-port", str(free_port())]) == 2
    err = capsys.readouterr().err
    assert "chroma" in err.lower() and "Traceback" not in err
