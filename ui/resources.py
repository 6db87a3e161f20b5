"""What the pages share: the index, retriever and chain, loaded once per process and configuration."""

from __future__ import annotations

import hashlib
import threading
from typing import Any

import streamlit as st

from paperchat.matrix import ResultsTable
from paperchat.runner import Workspace
from paperchat.vectorstore.settings import Settings


@st.cache_resource(show_spinner="Loading the index and the embedding model...")
def load(key: str) -> dict[str, Any]:
    """The index, retriever and chain for one configuration (loaded once per process)."""
    from paperchat.stack import build_stack

    stack = build_stack(Settings())
    stack.index.embedder.embed_query("warm up")  # the first question should not pay for loading the model
    # the Extract page's libraries and results load meanwhile, so that its first visit does not wait for them
    table = results_table(str(Workspace.for_settings(stack.settings).results))
    threading.Thread(target=_prepare_extract_page, args=(table,), name="paperchat-extract-page", daemon=True).start()
    return {"settings": stack.settings, "index": stack.index, "retriever": stack.retriever, "chain": stack.chain,
            "mode": stack.mode}


@st.cache_resource
def results_table(path: str) -> ResultsTable:
    """One incremental reader per results file, shared by every session of this app."""
    return ResultsTable(path)


def _prepare_extract_page(table: ResultsTable) -> None:
    import altair  # noqa: F401
    import pandas  # noqa: F401

    table.refresh()


def resources() -> dict[str, Any]:
    settings = Settings()
    secret = settings.openai_api_key.get_secret_value() if settings.openai_api_key else ""
    key = settings.model_dump_json(exclude={"openai_api_key"}) + hashlib.sha256(secret.encode()).hexdigest()
    return load(key)
