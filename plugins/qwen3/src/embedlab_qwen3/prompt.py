"""The yes/no reranker's input: Qwen3-VL-Reranker's prompt for a bidirectional encoder.

Qwen3-VL-Reranker reads the next-token logits of "yes" and "no" after the prompt
``<Instruct>: {instruction} <Query>: {query} <Document>: {document}``. A BERT encoder (MiniLM) has
no next token; its answer slot is a ``[MASK]`` token after the document, read by the (tied)
masked-language-model decoder. Query and document are truncated separately (the query to
``max_query_length`` tokens, the document to what remains of ``max_length``), never the prompt or
the answer slot::

    [CLS] <Instruct>: {instruction} <Query>: {query} <Document>: {document} <Answer>: [MASK] [SEP]
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from embedlab.errors import ConfigError, InvalidInputError

#: Qwen3-VL-Reranker's default instruction.
DEFAULT_INSTRUCTION = "Given a search query, retrieve relevant candidates that answer the query."
#: Tokens that stand for the answers (looked up in the model's vocabulary).
YES, NO = "yes", "no"


class PairTokenizer:
    """Token ids of (query, document) pairs with the answer slot second to last."""

    def __init__(self, tokenizer: Any, instruction: str, max_length: int, max_query_length: int) -> None:
        if tokenizer.mask_token_id is None or tokenizer.cls_token_id is None or tokenizer.sep_token_id is None:
            raise ConfigError("the yes/no reranker needs a tokenizer with [CLS], [SEP] and [MASK] tokens "
                              "(a BERT-style encoder such as all-MiniLM-L6-v2)")
        self.tokenizer, self.max_length, self.max_query_length = tokenizer, max_length, max_query_length
        self.head = self._ids(f"<Instruct>: {instruction} <Query>:" if instruction else "<Query>:")
        self.middle = self._ids("<Document>:")
        self.tail = self._ids("<Answer>:") + [tokenizer.mask_token_id, tokenizer.sep_token_id]
        fixed = 1 + len(self.head) + len(self.middle) + len(self.tail)
        if fixed + 2 > max_length:
            raise ConfigError(f"max_length={max_length} leaves no room for query and document after the "
                              f"{fixed} tokens of the prompt; raise max_length or shorten the instruction")
        self.budget = max_length - fixed

    def _ids(self, text: str) -> list[int]:
        return list(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def answer_ids(self) -> tuple[int, int]:
        """Vocabulary ids of "yes" and "no" (a clear error when the vocabulary lacks them)."""
        vocab = self.tokenizer.get_vocab()
        missing = [t for t in (YES, NO) if t not in vocab]
        if missing:
            raise ConfigError(f"the tokenizer's vocabulary has no token {missing}: the yes/no reranker reads "
                              "the logits of the tokens 'yes' and 'no'")
        return vocab[YES], vocab[NO]

    def encode(self, queries: Sequence[str], documents: Sequence[str]) -> list[list[int]]:
        """Token ids of each (query, document) pair (same lengths), answer slot at ``len - 2``."""
        if len(queries) != len(documents):
            raise InvalidInputError(f"{len(queries)} queries for {len(documents)} documents: pairs need one each")
        unique_docs = list(dict.fromkeys(documents))
        unique_queries = list(dict.fromkeys(queries))
        tok = self.tokenizer
        budget = self.budget
        query_ids = dict(zip(unique_queries, tok(unique_queries, add_special_tokens=False, truncation=True,
                                                 max_length=min(self.max_query_length, budget - 1))["input_ids"]))
        doc_ids = dict(zip(unique_docs, tok(unique_docs, add_special_tokens=False, truncation=True,
                                            max_length=budget)["input_ids"]))
        out = []
        for query, document in zip(queries, documents):
            q = query_ids[query]
            d = doc_ids[document][:budget - len(q)]
            out.append([tok.cls_token_id, *self.head, *q, *self.middle, *d, *self.tail])
        return out


def answer_positions(lengths: np.ndarray) -> np.ndarray:
    """Position of the answer slot in right-padded rows of these lengths."""
    return np.asarray(lengths, dtype=np.int64) - 2
