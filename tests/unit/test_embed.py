import shutil
from pathlib import Path

import numpy as np
import pytest

from paperchat.errors import ModelUnavailableError
from paperchat.vectorstore.embed import MINILM_MAX_TOKENS, MiniLMEmbeddings, default_model_paths


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
