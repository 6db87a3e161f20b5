"""The text toolkit: one tokenizer, one stopword list, one stemmer for searching and answering; the metric's
tokenisation as the benchmark defines it."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from paperchat.vectorstore import lexical
from paperchat.vectorstore.text import (
    GENERIC_WORDS,
    METRIC_STOPWORDS,
    STOPWORDS,
    content_terms,
    content_tokens,
    salient_terms,
    search_terms,
    stem,
    terms,
    words,
)
from tests.conftest import BENCH


def test_words_keep_joined_tokens_and_fold_accents() -> None:
    assert words("Faster R-CNN (Goëau, 2020) with ResNet-50 at lr 0.0025, v.0.2") == [
        "Faster", "R-CNN", "Goeau", "2020", "with", "ResNet-50", "at", "lr", "0.0025", "v", "0.2"]
    assert words("deep-\nlearning") == ["deeplearning"]  # hyphenated across a line break


@pytest.mark.parametrize(
    ("forms", "same"),
    [
        (("augmented", "augmentation", "augmenting"), True),
        (("GPUs", "GPU", "gpus"), True),
        (("normalization", "normalisation", "normalized", "normalised"), True),
        (("optimizer", "optimiser", "optimization"), True),
        (("regularisation", "regular"), False),  # different words stay apart
        (("scaling", "scales"), True),
        (("supervised", "supervision"), True),
    ],
)
def test_word_forms_meet_under_one_stem(forms: tuple[str, ...], same: bool) -> None:
    assert (len({stem(f) for f in forms}) == 1) is same


def test_the_stemmer_is_safe_to_share_between_threads() -> None:
    vocabulary = [f"{w}{suffix}" for w in ("augment", "normaliz", "train", "classif") for suffix in ("ed", "ing", "ation")]
    expected = [stem(w) for w in vocabulary]
    stem.cache_clear()  # every thread stems for itself
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda _: [stem(w) for w in vocabulary], range(32)))
    assert all(r == expected for r in results)


def test_terms_drop_stopwords_and_content_terms_drop_generic_words() -> None:
    assert terms("The model was trained on the GPUs") == [stem("model"), stem("trained"), stem("GPUs")]
    assert content_terms("The model was trained on a TITAN Xp GPU") == {stem("TITAN"), stem("Xp"), stem("GPU")}
    assert "we" in STOPWORDS and "model" in GENERIC_WORDS and "model" not in STOPWORDS


def test_search_terms_split_at_joiners_but_keep_numbers() -> None:
    assert search_terms("Faster R-CNN, lr 0.0025") == ["faster", "r", "cnn", "lr", "0.0025"]
    assert search_terms("the R-CNN", skip_stopwords=True) == ["cnn"]


def test_the_keyword_index_and_its_queries_stem_alike(tmp_path: Path) -> None:
    from tests.unit.test_lexical import FakeIndex

    index = FakeIndex()
    index.add("aaaa000000000001", "Spectrograms were normalised and the images augmented by flipping.")
    index.add("bbbb000000000002", "Bird calls were recorded with AudioMoth devices.")
    lex = lexical.LexicalIndex(tmp_path / "lex.sqlite")
    lex.sync(index)
    for query in ("normalization", "augmentation", "flipped", "spectrogram"):
        assert [h[0] for h in lex.search(query, 5)] == ["aaaa000000000001:00000"], query
    assert lexical.index_text("Images augmented") == "imag augment"


def test_the_metric_keeps_the_benchmark_definition() -> None:
    assert METRIC_STOPWORDS == STOPWORDS | GENERIC_WORDS
    # light plural folding only, no stemming; 2-letter words count when written with a capital
    assert content_tokens("The models were trained on TITAN Xp GPUs with augmentation") == {"titan", "xp", "gpu", "augmentation"}
    assert salient_terms("Trained on TITAN Xp GPUs.", "Which GPUs were used?") == {"titan", "xp"}


def test_the_metric_agrees_with_the_reference_scorer_tokenisation() -> None:
    """Where the benchmark is present: its tokens are ours (the stopword lists differ, README)."""
    tools = BENCH / "tools" / "textnorm.py"
    if not tools.exists():
        pytest.skip("../shared/bench not present")
    import importlib.util

    spec = importlib.util.spec_from_file_location("textnorm", tools)
    assert spec and spec.loader
    textnorm = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(textnorm)
    from paperchat.vectorstore.text import tokens

    sample = ("The ML pipeline was written in python v.2.7.12 using theano v.0.9.0 and lasagne v.0.2; "
              "a learning rate of 0. 0025, ResNet-50 backbones, GPUs (TITAN Xp), Faster R-CNN, mini-\nbatches.")
    assert tokens(sample) == textnorm.tokens(sample)
