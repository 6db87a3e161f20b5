"""paperchat: ask questions of a collection of scientific papers, with strict, cited answers.

Public names are imported on first use, so ``paperchat --help`` stays fast.
"""

from __future__ import annotations

from paperchat.vectorstore.lazy import lazy_attributes

__version__ = "0.1.0"

_EXPORTS = {
    "Settings": "paperchat.vectorstore.settings",
    "load_settings": "paperchat.vectorstore.settings",
    "PaperchatError": "paperchat.vectorstore.errors",
    "PaperIndex": "paperchat.vectorstore.index",
    "MiniLMEmbeddings": "paperchat.vectorstore.embed",
    "index_paths": "paperchat.vectorstore.ingest",
    "PaperRetriever": "paperchat.vectorstore.retriever",
    "create_qa_chain": "paperchat.chain",
    "create_paper_tool": "paperchat.tools",
    "build_stack": "paperchat.stack",
    "QAInput": "paperchat.types",
    "load_chain": "paperchat.chain",
    "QAResult": "paperchat.types",
    "Citation": "paperchat.types",
    "ExtractiveAnswerer": "paperchat.extractive",
    "make_chat_model": "paperchat.llm",
}

__all__ = sorted(_EXPORTS)


__getattr__ = lazy_attributes(__name__, _EXPORTS)
