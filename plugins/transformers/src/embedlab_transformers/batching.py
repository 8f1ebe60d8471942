"""Tokenising with truncation bookkeeping, and padded batches of similar length."""

from __future__ import annotations

from typing import Any, Iterator, Mapping, Sequence

import attrs
import numpy as np


@attrs.frozen(eq=False)
class Tokenized:
    """Token ids (already truncated) of some texts, and which texts lost tokens to truncation."""

    features: Mapping[str, Sequence[Sequence[int]]]
    truncated: list[int]

    @property
    def lengths(self) -> np.ndarray:
        return np.fromiter(map(len, self.features["input_ids"]), dtype=np.int64)


def tokenize(tokenizer: Any, texts: list[str], max_length: int) -> Tokenized:
    """Tokenise with special tokens, truncating to ``max_length`` tokens.

    Only texts that come out exactly ``max_length`` long are tokenised a second time (one token
    longer) to tell the truncated ones apart.
    """
    encoded = tokenizer(texts, truncation=True, max_length=max_length, padding=False)
    features = {name: encoded[name] for name in encoded.keys()}
    full = [i for i, ids in enumerate(features["input_ids"]) if len(ids) >= max_length]
    truncated: list[int] = []
    if full:
        longer = tokenizer([texts[i] for i in full], truncation=True, max_length=max_length + 1,
                           padding=False)["input_ids"]
        truncated = [i for i, ids in zip(full, longer) if len(ids) > max_length]
    return Tokenized(features, truncated)


def padding_values(tokenizer: Any) -> dict[str, int]:
    """What fills the padding of each model input."""
    return {"input_ids": tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0,
            "token_type_ids": getattr(tokenizer, "pad_token_type_id", 0), "attention_mask": 0}


def length_sorted_batches(tokens: Tokenized, input_names: Sequence[str], pad: Mapping[str, int],
                          batch_size: int, padding_side: str = "right"
                          ) -> Iterator[tuple[np.ndarray, dict[str, np.ndarray]]]:
    """Yield ``(rows, inputs)``: the rows of ``tokens`` in the batch, longest first, and int64
    ``(batch, longest)`` arrays per input name, padded on ``padding_side``. ``attention_mask``
    (1 on tokens, 0 on padding) is always included: pooling needs it."""
    lengths = tokens.lengths
    order = np.argsort(-lengths, kind="stable")
    for start in range(0, order.size, batch_size):
        rows = order[start:start + batch_size]
        width = int(lengths[rows].max())
        inputs = {}
        for name in dict.fromkeys(["attention_mask", *input_names]):
            array = np.full((rows.size, width), pad.get(name, 0), dtype=np.int64)
            values = None if name == "attention_mask" else tokens.features.get(name)
            for j, row in enumerate(rows):
                default = 1 if name == "attention_mask" else 0
                seq = values[row] if values is not None else [default] * int(lengths[row])
                if padding_side == "left":
                    array[j, width - len(seq):] = seq
                else:
                    array[j, :len(seq)] = seq
            inputs[name] = array
        yield rows, inputs
