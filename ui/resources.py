"""What the pages share: the index, retriever and chain, loaded once per process and configuration."""

from __future__ import annotations

import hashlib
from typing import Any

import streamlit as st

from paperchat.vectorstore.settings import Settings


@st.cache_resource(show_spinner="Loading the index and the embedding model...")
def load(key: str) -> dict[str, Any]:
    """The index, retriever and chain for one configuration (loaded once per process)."""
    from paperchat.chain import create_qa_chain
    from paperchat.llm import make_chat_model
    from paperchat.vectorstore.index import PaperIndex
    from paperchat.vectorstore.retriever import PaperRetriever

    settings = Settings()
    index = PaperIndex.open(settings)
    index.embedder.embed_query("warm up")  # the first question should not pay for loading the model
    retriever = PaperRetriever(index=index, k=settings.k, mode=settings.retrieval)
    llm = make_chat_model(settings) if settings.uses_llm else None
    return {"settings": settings, "index": index, "retriever": retriever,
            "chain": create_qa_chain(retriever, llm=llm), "mode": f"llm:{settings.model}" if llm else "extractive"}


def resources() -> dict[str, Any]:
    settings = Settings()
    secret = settings.openai_api_key.get_secret_value() if settings.openai_api_key else ""
    key = settings.model_dump_json(exclude={"openai_api_key"}) + hashlib.sha256(secret.encode()).hexdigest()
    return load(key)
