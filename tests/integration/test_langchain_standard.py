"""LangChain's own standard test suites (package ``langchain-tests``) on paperchat's public classes: the
embedder (``Embeddings``), the retriever (``BaseRetriever``) and the index (``VectorStore``, sync and async)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from langchain_core.vectorstores import VectorStore
from langchain_tests.integration_tests import (
    EmbeddingsIntegrationTests,
    RetrieversIntegrationTests,
    VectorStoreIntegrationTests,
)
from langchain_tests.unit_tests import EmbeddingsUnitTests

from paperchat.vectorstore.embed import MiniLMEmbeddings
from paperchat.vectorstore.index import PaperIndex
from paperchat.vectorstore.retriever import PaperRetriever

pytestmark = pytest.mark.integration


class MiniLM:
    """The embedder under test: the offline default, no parameters."""

    @property
    def embeddings_class(self) -> type[MiniLMEmbeddings]:
        return MiniLMEmbeddings

    @property
    def embedding_model_params(self) -> dict[str, Any]:
        return {}


class TestMiniLMEmbeddingsUnit(MiniLM, EmbeddingsUnitTests):
    pass


class TestMiniLMEmbeddingsIntegration(MiniLM, EmbeddingsIntegrationTests):
    pass


class TestPaperRetriever(RetrieversIntegrationTests):
    """Over the session's index of sample_docs/ (set by the fixture below: the suite's constructor
    parameters are a property, which cannot ask for fixtures)."""

    index: PaperIndex | None = None

    @pytest.fixture(autouse=True)
    def _index(self, sample_index: PaperIndex) -> None:
        type(self).index = sample_index

    @property
    def retriever_constructor(self) -> type[PaperRetriever]:
        return PaperRetriever

    @property
    def retriever_constructor_params(self) -> dict[str, Any]:
        return {"index": type(self).index}

    @property
    def retriever_query_example(self) -> str:
        return "Which GPU were the models trained on?"


class TestPaperIndexVectorStore(VectorStoreIntegrationTests):
    """An empty index per test, with the suite's 6-dimensional fake embeddings."""

    @pytest.fixture
    def vectorstore(self, tmp_path: Path) -> Iterator[VectorStore]:
        store = PaperIndex.open(db=tmp_path / "db", collection="standard", embedding=self.get_embeddings())
        try:
            yield store
        finally:
            store.close()
