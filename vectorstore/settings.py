"""The one settings object of paperchat.

Every knob is read from the environment (prefix ``PAPERCHAT_``, e.g.
``PAPERCHAT_DB=/data/papers``) and can be overridden by CLI flags (:func:`load_settings`;
constructor arguments win over the environment). The OpenAI
variables keep their usual names (``OPENAI_API_KEY``, ``OPENAI_BASE_URL``).

Example:
    >>> from paperchat.vectorstore.settings import Settings
    >>> Settings(collection="ecology").collection
    'ecology'
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

#: Embedder names: the embedded ONNX MiniLM (``minilm``; ``minilm-int8`` runs it with int8 products, twice as
#: fast and slightly less precise), or ``openai:<model>`` for an OpenAI(-compatible) endpoint.
DEFAULT_EMBEDDER = "minilm"
#: The names a collection records for the two MiniLM variants (also accepted as ``PAPERCHAT_EMBEDDER``).
MINILM_NAME = "all-MiniLM-L6-v2-int8-onnx"
MINILM_INT8_NAME = "all-MiniLM-L6-v2-onnx-dynamic-int8"
EMBEDDER_CHOICES = "'minilm', 'minilm-int8' or 'openai:<model name>'"
#: Chroma's rule for collection names.
_COLLECTION_NAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9._-]{1,510})[A-Za-z0-9]")


class Settings(BaseSettings):
    """Where the index lives, how papers are chunked and embedded, and which LLM answers."""

    model_config = SettingsConfigDict(env_prefix="PAPERCHAT_", extra="ignore", populate_by_name=True)

    # -- the index ---------------------------------------------------------
    db: Path = Field(default=Path(".paperchat"), description="Folder of the embedded Chroma store.")
    collection: str = Field(default="papers", description="Chroma collection holding the chunks.")
    chroma_host: str | None = Field(default=None, description="Chroma server host; unset = embedded store.")
    chroma_port: int = Field(default=8000, description="Chroma server port.")

    # -- chunking and embedding -------------------------------------------
    embedder: str = Field(default=DEFAULT_EMBEDDER, description="'minilm', 'minilm-int8' or 'openai:<model>'.")
    model_cache: Path | None = Field(
        default=None, description="Folder for the int8 embedding model made on first use (default ~/.cache/paperchat)."
    )
    chunk_tokens: int = Field(default=200, ge=32, le=2000, description="Target chunk size (cl100k tokens).")
    chunk_overlap: int = Field(default=30, ge=0, le=500, description="Tokens repeated between chunks.")
    max_file_mb: float = Field(default=200.0, gt=0, description="Files larger than this are refused.")
    max_pages: int = Field(default=2000, gt=0, description="PDFs with more pages are refused.")
    parse_timeout_s: float = Field(default=120.0, gt=0, description="Per-file parsing time limit (OCR included).")
    ocr: Literal["auto", "always", "never"] = Field(
        default="auto",
        description="OCR of PDF pages: 'auto' = pages without a usable text layer, 'always' = every page, 'never'.",
    )
    write_wait_s: float = Field(
        default=30.0, ge=0, description="How long the chat app's uploads and deletions wait for another writer."
    )
    lease_ttl_s: float = Field(
        default=30.0, gt=0, le=3600,
        description="Chroma server: how long a writer's lease lasts unrenewed (a stopped writer's is taken over after it).",
    )

    # -- retrieval and answering -------------------------------------------
    k: int = Field(default=6, ge=1, le=50, description="Excerpts retrieved per question.")
    retrieval: Literal["hybrid", "dense"] = Field(default="hybrid", description="Retrieval mode.")
    model: str = Field(default="gpt-4o-mini", description="Chat model name for the OpenAI-compatible endpoint.")
    llm: Literal["auto", "openai", "extractive"] = Field(
        default="auto", description="'auto' = LLM when OPENAI_API_KEY or OPENAI_BASE_URL is set, else extractive."
    )
    request_timeout_s: float = Field(default=60.0, gt=0, description="LLM request timeout.")
    max_retries: int = Field(default=2, ge=0, le=10, description="Retries on 429/5xx/timeouts.")

    openai_api_key: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("OPENAI_API_KEY", "PAPERCHAT_OPENAI_API_KEY")
    )
    openai_base_url: str | None = Field(
        default=None, validation_alias=AliasChoices("OPENAI_BASE_URL", "PAPERCHAT_OPENAI_BASE_URL")
    )

    @field_validator("chroma_host", "openai_base_url", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("collection")
    @classmethod
    def _chroma_collection_name(cls, value: str) -> str:
        if not _COLLECTION_NAME.fullmatch(value):
            raise ValueError(
                f"{value!r} is not a collection name Chroma accepts: use 3-512 letters, digits, '.', '_' or '-', "
                "starting and ending with a letter or digit (e.g. 'papers')"
            )
        return value

    @field_validator("embedder")
    @classmethod
    def _known_embedder(cls, value: str) -> str:
        name = value.strip()
        if name in ("minilm", "minilm-int8", MINILM_NAME, MINILM_INT8_NAME) or (
            name.startswith("openai:") and name.split(":", 1)[1].strip()
        ):
            return name
        raise ValueError(f"unknown embedder {value!r}: use {EMBEDDER_CHOICES}")

    @field_validator("db")
    @classmethod
    def _db_is_a_folder(cls, value: Path) -> Path:
        if value.exists() and not value.is_dir():
            raise ValueError(f"{value} is a file, not a folder: name a folder for the index (it is created if missing)")
        return value

    @property
    def uses_server(self) -> bool:
        """True when the index is a Chroma server rather than an embedded folder."""
        return bool(self.chroma_host)

    @property
    def uses_llm(self) -> bool:
        """True when questions are answered by an LLM rather than extractively."""
        if self.llm == "auto":
            return bool(self.openai_api_key or self.openai_base_url)
        return self.llm == "openai"

    def location(self) -> str:
        """Human-readable location of the index, for messages."""
        if self.uses_server:
            return f"chroma server {self.chroma_host}:{self.chroma_port}, collection '{self.collection}'"
        return f"{self.db}, collection '{self.collection}'"


def load_settings(**overrides: object) -> Settings:
    """Settings from the environment, with the non-``None`` overrides applied (CLI flags)."""
    return Settings(**{key: value for key, value in overrides.items() if value is not None})
