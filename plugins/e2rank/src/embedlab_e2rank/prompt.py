"""The listwise prompt of E2Rank: instruction, query and the first stage's top-K documents.

Each document is cut to its first ``doc_words`` whitespace-separated words (whitespace collapsed, so
a document cannot break the ``[i]`` numbering). With ``query_first`` (default) the query comes
right after the instruction, before the documents: an encoder that truncates long inputs from the
end (MiniLM keeps 256 word pieces) then drops document words, never the query. ``query_first=False``
is the paper's layout (query last), which such an encoder cuts off once the prompt is too long.
"""

from __future__ import annotations

from typing import Sequence

#: The rerank instruction of the E2Rank README.
DEFAULT_INSTRUCTION = ("Given a web search query and some relevant documents, rerank the documents "
                       "that answer the query:")


def truncate_words(text: str, words: int | None) -> str:
    """``text`` with whitespace collapsed to single spaces, cut to its first ``words`` words."""
    parts = text.split()
    return " ".join(parts if words is None else parts[:words])


def listwise_prompt(query: str, documents: Sequence[str], *, instruction: str = DEFAULT_INSTRUCTION,
                    doc_words: int | None = None, query_first: bool = True) -> str:
    """The prompt whose embedding is E2Rank's pseudo-query::

        {instruction}
        Query: {query}              (query_first=True)
        Documents:
        [1] {first document, cut to doc_words words}
        [2] ...
        Search Query: {query}       (query_first=False, the paper's layout)
    """
    head = [instruction] if instruction else []
    query_line = " ".join(query.split())
    numbered = [f"[{i}] {truncate_words(doc, doc_words)}" for i, doc in enumerate(documents, start=1)]
    if query_first:
        return "\n".join([*head, f"Query: {query_line}", "Documents:", *numbered])
    return "\n".join([*head, "Documents:", *numbered, f"Search Query: {query_line}"])
