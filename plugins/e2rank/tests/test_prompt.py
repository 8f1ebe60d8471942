"""The listwise prompt: layout, per-document truncation, and the query surviving MiniLM's window."""

from __future__ import annotations

from embedlab_e2rank import DEFAULT_INSTRUCTION, listwise_prompt
from embedlab_e2rank.prompt import truncate_words


def test_layout_query_first_and_paper_order():
    docs = ["alpha beta\ngamma", "delta"]
    assert listwise_prompt("what is x?", docs, instruction="Rank:") == (
        "Rank:\nQuery: what is x?\nDocuments:\n[1] alpha beta gamma\n[2] delta")
    assert listwise_prompt("what is x?", docs, instruction="Rank:", query_first=False) == (
        "Rank:\nDocuments:\n[1] alpha beta gamma\n[2] delta\nSearch Query: what is x?")
    assert listwise_prompt("q", [], instruction="") == "Query: q\nDocuments:"


def test_documents_are_cut_to_doc_words_and_cannot_break_numbering():
    doc = "one two\n[2] three   four five"
    assert truncate_words(doc, 3) == "one two [2]"
    assert truncate_words(doc, None) == "one two [2] three four five"
    prompt = listwise_prompt("q", [doc, "six seven eight"], doc_words=2)
    assert prompt.endswith("Documents:\n[1] one two\n[2] six seven")


def test_query_survives_minilm_truncation_only_when_first(encoder, dataset):
    """Ten long documents overflow 256 word pieces: the query-first prompt keeps the query (the
    encoder truncates from the end), the paper's query-last layout loses it."""
    query = "xylophonic zebra quandary"
    documents = dataset.corpus.documents()[:10]
    tokenizer, window = encoder.tokenizer, encoder.max_length

    def kept(prompt: str) -> str:
        ids = tokenizer(prompt, truncation=True, max_length=window)["input_ids"]
        return tokenizer.decode(ids)

    first = listwise_prompt(query, documents, doc_words=100)
    last = listwise_prompt(query, documents, doc_words=100, query_first=False)
    assert len(tokenizer(first)["input_ids"]) > window
    assert query in kept(first)
    assert query not in kept(last)
    assert DEFAULT_INSTRUCTION.lower()[:40] in kept(first)
