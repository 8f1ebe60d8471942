"""The Tokenizes seam (token_spans, max_tokens) and passages of real SciFact abstracts."""

from __future__ import annotations

import unicodedata
import warnings

import numpy as np
from embedlab_transformers import MiniLM

from embedlab import Corpus
from embedlab.protocols import Tokenizes
from embedlab.segmentation import segment


def plain(text: str) -> str:
    """What the uncased BERT tokenizer makes of a piece of text: lower case without accents."""
    return "".join(c for c in unicodedata.normalize("NFD", text.lower()) if unicodedata.category(c) != "Mn")


def test_token_spans_are_the_tokenizers_tokens(minilm, documents):
    assert isinstance(minilm, Tokenizes)
    spans = minilm.token_spans(documents)
    for text, found in zip(documents, spans):
        ids = minilm.tokenizer(text, add_special_tokens=False)["input_ids"]
        assert len(found) == len(ids) > 0  # no truncation, no [CLS]/[SEP]
        tokens = minilm.tokenizer.convert_ids_to_tokens(ids)
        pieces = [plain(text[a:b]) for (a, b), t in zip(found, tokens) if t != "[UNK]"]
        assert pieces == [t.removeprefix("##") for t in tokens if t != "[UNK]"]
        assert (np.diff(found[:, 0]) >= 0).all() and (found[:, 1] <= len(text)).all()
    assert minilm.token_spans([]) == []


def test_max_tokens_leaves_room_for_specials_and_prefix(opts):
    assert MiniLM(**opts).max_tokens == 254
    assert MiniLM(document_prefix="passage: ", **opts).max_tokens == 254 - 2  # "passage" and ":"


def test_token_passages_of_scifact_fit_minilm(minilm, scifact):
    corpus = Corpus(scifact.corpus.ids[:40], scifact.corpus.texts[:40], titles=scifact.corpus.titles[:40])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # default size leaves room for the title: nothing is cut
        passages = segment(corpus, by="tokens", overlap=32, encoder=minilm)
    lengths = [len(s) for s in minilm.token_spans(list(passages.texts))]
    assert max(lengths) <= 254 and len(passages) > 40
    ids = minilm.tokenizer(list(passages.texts), truncation=True, max_length=256)["input_ids"]
    full = minilm.tokenizer(list(passages.texts))["input_ids"]
    assert ids == full  # encoding a passage loses no token
