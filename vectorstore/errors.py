"""Domain errors. Each message says what happened, to which file or service, and what to do."""

from __future__ import annotations

from pathlib import Path


class PaperchatError(Exception):
    """Base class of every error paperchat raises on purpose."""


class DocumentError(PaperchatError):
    """A file could not be turned into indexable text (the file is named, the reason given)."""

    def __init__(self, path: str | Path, reason: str) -> None:
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


class ModelUnavailableError(PaperchatError):
    """The embedded embedding model is missing or damaged."""


class EmbeddingEndpointError(PaperchatError):
    """An OpenAI(-compatible) embedding endpoint is not configured, not reachable, or refused the request."""


class EmbedderMismatchError(PaperchatError):
    """The collection was built by another embedder (or chunking version) than the one configured."""


class IndexBusyError(PaperchatError):
    """Another process is writing to the same index."""


class WriteLeaseLostError(PaperchatError):
    """This writer's lease on a Chroma server expired and another writer may have taken over."""


class IndexUnavailableError(PaperchatError):
    """The Chroma store or server cannot be reached."""


class LLMError(PaperchatError):
    """The LLM endpoint failed; the message is safe to show (it never contains the API key)."""


class EmptyIndexError(PaperchatError):
    """The index holds no papers (or does not exist): a typo in the path or collection, or nothing indexed yet."""
