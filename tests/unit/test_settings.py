from pathlib import Path

import pytest

from paperchat.vectorstore.settings import Settings, load_settings


def test_environment_and_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PAPERCHAT_DB", "/data/papers")
    monkeypatch.setenv("PAPERCHAT_CHUNK_TOKENS", "150")
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
    settings = load_settings(collection="eco", db=None)
    assert settings.db == Path("/data/papers")
    assert settings.chunk_tokens == 150
    assert settings.collection == "eco"
    assert settings.uses_llm


def test_defaults_are_offline() -> None:
    settings = Settings()
    assert not settings.uses_server and not settings.uses_llm
    assert settings.embedder == "minilm"


def test_invalid_values_are_rejected(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PAPERCHAT_CHUNK_TOKENS", "5")
    with pytest.raises(ValueError, match="chunk_tokens"):
        Settings()


def test_secret_is_not_printed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-secret-123")
    settings = Settings()
    assert "sk-test-secret-123" not in repr(settings) and "sk-test-secret-123" not in str(settings.model_dump())
