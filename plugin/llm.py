"""The LLM: any OpenAI-compatible chat endpoint through ``langchain-openai``, and what its failures mean.

``OPENAI_API_KEY`` and ``OPENAI_BASE_URL`` point at OpenAI, vLLM, Ollama, llama.cpp server or any other
OpenAI-compatible endpoint; ``PAPERCHAT_MODEL`` names the model. Temperature 0, streaming on. The openai
client retries timeouts, 429 and 5xx with backoff (``PAPERCHAT_MAX_RETRIES``); whatever still fails
becomes an :class:`~paperchat.vectorstore.errors.LLMError` whose message says what to do and never contains the key.
"""

from __future__ import annotations

from typing import Any

from paperchat.vectorstore.errors import LLMError
from paperchat.vectorstore.settings import Settings


def make_chat_model(settings: Settings) -> Any:
    """A ``ChatOpenAI`` for the configured endpoint and model."""
    from langchain_openai import ChatOpenAI

    key = settings.openai_api_key.get_secret_value() if settings.openai_api_key else "not-needed"
    return ChatOpenAI(
        model=settings.model,
        temperature=0,
        api_key=key,  # local servers accept any key
        base_url=settings.openai_base_url,
        timeout=settings.request_timeout_s,
        max_retries=settings.max_retries,
        streaming=True,
    )


def model_label(llm: Any) -> str:
    """The ``mode`` string of an answer: ``llm:<model name>``."""
    name = getattr(llm, "model_name", None) or getattr(llm, "model", None) or type(llm).__name__
    return f"llm:{name}"


def _endpoint(llm: Any) -> str:
    return str(getattr(llm, "openai_api_base", None) or getattr(llm, "base_url", None) or "the LLM endpoint")


def redact(text: str, secret: str | None) -> str:
    """``text`` with the secret (and anything that looks like an API key) masked."""
    import re

    if secret and len(secret) >= 4:
        text = text.replace(secret, "***")
    return re.sub(r"\b(sk-[A-Za-z0-9_\-]{6})[A-Za-z0-9_\-]+", r"\1***", text)


def llm_error(exc: BaseException, llm: Any = None) -> LLMError:
    """A clear, key-free :class:`LLMError` for an exception raised while calling the LLM."""
    import openai

    where = _endpoint(llm)
    model = getattr(llm, "model_name", None) or "the configured model"
    if isinstance(exc, openai.AuthenticationError):
        message = f"{where} rejected the API key (401). Set a valid OPENAI_API_KEY for this endpoint."
    elif isinstance(exc, openai.PermissionDeniedError):
        message = f"{where} refused access (403) to {model}. Check the key's permissions."
    elif isinstance(exc, openai.RateLimitError):
        message = f"{where} is rate-limiting requests (429) and still was after the retries. Wait a minute and ask again."
    elif isinstance(exc, openai.NotFoundError):
        message = f"{where} has no model '{model}' (404). Set PAPERCHAT_MODEL to a model it serves."
    elif isinstance(exc, openai.APITimeoutError):
        message = f"{where} did not answer in time (PAPERCHAT_REQUEST_TIMEOUT_S). Try again, or use a faster model."
    elif isinstance(exc, openai.APIConnectionError):
        message = f"Cannot connect to {where}. Is the server running and OPENAI_BASE_URL right?"
    elif isinstance(exc, openai.APIStatusError):
        message = f"{where} failed with HTTP {exc.status_code} after the retries. Try again later."
    elif isinstance(exc, (openai.APIError, ValueError, KeyError, TypeError)):
        # a body that is not the OpenAI format (an HTML error page, a proxy's reply, broken JSON)
        message = f"{where} sent a reply that could not be read ({type(exc).__name__}). Is OPENAI_BASE_URL an OpenAI-compatible API?"
    else:
        message = f"The LLM call failed ({type(exc).__name__}). Try again."
    key = getattr(llm, "openai_api_key", None)
    secret = key.get_secret_value() if hasattr(key, "get_secret_value") else None
    return LLMError(redact(message, secret))
