import shutil
from pathlib import Path

import numpy as np
import pytest

from paperchat.vectorstore.embed import MINILM_MAX_TOKENS, MiniLMEmbeddings, default_model_paths
from paperchat.vectorstore.errors import ModelUnavailableError


@pytest.fixture(scope="module")
def emb() -> MiniLMEmbeddings:
    return MiniLMEmbeddings().load()


def test_vectors_are_384_dimensional_and_normalised(emb: MiniLMEmbeddings) -> None:
    vectors = emb.embed_array(["Which GPU was used?", "The model was trained on a TITAN Xp GPU."])
    assert vectors.shape == (2, 384)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)


def test_similar_meaning_scores_higher(emb: MiniLMEmbeddings) -> None:
    q = np.array(emb.embed_query("Which hardware was used for training?"))
    good, bad = emb.embed_array(["Training ran on a single NVIDIA GPU.", "Bananas are rich in potassium."])
    assert q @ good > q @ bad + 0.2


def test_padding_to_the_batch_does_not_change_vectors(emb: MiniLMEmbeddings) -> None:
    short = "a short query"
    alone = emb.embed_array([short])[0]
    with_long = emb.embed_array([short, "a much longer passage " * 40])[0]
    assert np.allclose(alone, with_long, atol=1e-4)


def test_count_tokens_sees_past_the_truncation_limit(emb: MiniLMEmbeddings) -> None:
    counts = emb.count_tokens(["hello world", "word " * 400])
    assert counts[0] == 4  # [CLS] hello world [SEP]
    assert counts[1] > MINILM_MAX_TOKENS
    # counting leaves truncation on for embedding
    assert emb.embed_array(["word " * 400]).shape == (1, 384)


def test_langchain_interface(emb: MiniLMEmbeddings) -> None:
    docs = emb.embed_documents(["one", "two"])
    assert len(docs) == 2 and len(docs[0]) == 384 and isinstance(docs[0][0], float)
    assert len(emb.embed_query("three")) == 384


def test_damaged_model_file_is_refused(tmp_path: Path) -> None:
    from paperchat.vectorstore.embed import MINILM_SHA256, _load_model

    model, tokenizer = default_model_paths()
    damaged = tmp_path / "model.onnx"
    shutil.copy(model, damaged)
    with damaged.open("r+b") as fh:
        fh.seek(1000)
        fh.write(b"\x00\x01\x02")
    with pytest.raises(ModelUnavailableError, match="damaged.*Reinstall"):
        _load_model(str(damaged), str(tokenizer), MINILM_SHA256)
    with pytest.raises(ModelUnavailableError, match="missing"):
        _load_model(str(tmp_path / "absent.onnx"), str(tokenizer), MINILM_SHA256)


def test_vector_cache_embeds_each_text_once_and_stays_bounded(emb: MiniLMEmbeddings) -> None:
    from paperchat.vectorstore.embed import VectorCache

    calls: list[list[str]] = []

    class Counting:
        def embed_array(self, texts: list[str]) -> np.ndarray:
            calls.append(list(texts))
            return emb.embed_array(texts)

    cache = VectorCache(Counting(), size=2)
    first = cache.embed(["a GPU", "a TPU", "a GPU"])
    assert calls == [["a GPU", "a TPU"]] and np.allclose(first[0], first[2])
    again = cache.embed(["a TPU"])
    assert len(calls) == 1 and np.allclose(again[0], first[1])
    cache.embed(["a CPU"])  # the least recently used ("a GPU") goes
    cache.embed(["a GPU"])
    assert calls[-1] == ["a GPU"]
    assert np.allclose(cache.embed(["a GPU"])[0], emb.embed_array(["a GPU"])[0], atol=1e-5)


def test_int8_products_are_made_once_checked_and_close_to_the_default(tmp_path: Path, emb: MiniLMEmbeddings) -> None:
    from paperchat.vectorstore.embed import MINILM_INT8_NAME
    from paperchat.vectorstore.quantize import quantized_model

    fast = MiniLMEmbeddings(quantize=True, cache_dir=tmp_path).load()
    assert fast.name == MINILM_INT8_NAME != emb.name
    made = sorted(tmp_path.glob("*.onnx"))
    assert len(made) == 1 and made[0].with_suffix(".sha256").is_file()
    texts = ["Training ran on a single NVIDIA GPU.", "Images were flipped and rotated for augmentation.",
             "Bananas are rich in potassium."]
    a, b = emb.embed_array(texts), fast.embed_array(texts)
    assert np.all(np.sum(a * b, axis=1) > 0.97)  # the same model, computed in int8
    q = np.array(fast.embed_query("Which hardware was used for training?"))
    assert q @ b[0] > q @ b[2] + 0.2
    # a damaged cached file is made again, not used
    stamp = made[0].stat().st_mtime_ns
    with made[0].open("r+b") as fh:
        fh.seek(5000)
        fh.write(b"\x00\x00\x00\x00")
    model, _ = default_model_paths()
    from paperchat.vectorstore.embed import MINILM_SHA256

    again = quantized_model(model, MINILM_SHA256, tmp_path)
    assert again == made[0] and again.stat().st_mtime_ns != stamp
    from paperchat.vectorstore.checksum import file_sha256

    assert file_sha256(again) == again.with_suffix(".sha256").read_text().strip()
