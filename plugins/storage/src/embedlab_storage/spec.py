"""The storage ``spec`` string: ``QUANTISER``, ``REDUCER:FRACTION`` or ``REDUCER:FRACTION+QUANTISER``.

>>> str(parse_spec("PCA:0.50+float8_e4m3"))
'pca:0.5+float8_e4m3'
>>> parse_spec("srp:0.25").quantiser   # a reducer alone keeps float32 values
'float32'
"""

from __future__ import annotations

import difflib

import attrs

from embedlab.errors import ConfigError

#: Quantisers: how each kept dimension is stored.
QUANTISERS = ("float32", "float16", "bfloat16", "float8_e4m3", "float8_e5m2", "int8", "binary")
#: Reducers: how the dimension is reduced before quantisation.
REDUCERS = ("pca", "kpca", "grp", "srp", "ae", "umap")

GRAMMAR = ("QUANTISER, REDUCER:FRACTION or REDUCER:FRACTION+QUANTISER (for example 'float8_e4m3', "
           "'pca:0.5' or 'pca:0.5+float8_e4m3')")
_v = attrs.validators


@attrs.frozen
class ReducerSpec:
    """A reducer and the fraction of the input dimensions it keeps."""

    method: str = attrs.field(validator=_v.in_(REDUCERS))
    fraction: float = attrs.field(validator=[_v.instance_of(float), _v.gt(0.0), _v.le(1.0)])

    def output_dim(self, input_dim: int) -> int:
        """Kept dimensions: ``fraction * input_dim`` rounded half up, at least 1."""
        return max(1, int(self.fraction * input_dim + 0.5))

    def __str__(self) -> str:
        return f"{self.method}:{self.fraction:g}"


@attrs.frozen
class StorageSpec:
    """A parsed spec: an optional reducer followed by a quantiser."""

    quantiser: str = attrs.field(default="float32", validator=_v.in_(QUANTISERS))
    reducer: ReducerSpec | None = attrs.field(default=None,
                                              validator=_v.optional(_v.instance_of(ReducerSpec)))

    def __str__(self) -> str:
        if self.reducer is None:
            return self.quantiser
        return str(self.reducer) + ("" if self.quantiser == "float32" else f"+{self.quantiser}")


def _unknown(word: str, kind: str, names: tuple[str, ...], text: str) -> ConfigError:
    close = difflib.get_close_matches(word, names, n=2, cutoff=0.6)
    hint = f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    return ConfigError(f"storage spec {text!r}: unknown {kind} {word!r}; valid {kind}s: "
                       f"{', '.join(names)}.{hint} A spec is {GRAMMAR}.")


def _parse_reducer(part: str, text: str) -> ReducerSpec:
    method, _, fraction = part.partition(":")
    if method in QUANTISERS:
        raise ConfigError(f"storage spec {text!r}: {method!r} is a quantiser, it takes no fraction; "
                          f"a spec is {GRAMMAR}")
    if method not in REDUCERS:
        raise _unknown(method, "reducer", REDUCERS, text)
    try:
        value = float(fraction)
    except ValueError:
        raise ConfigError(f"storage spec {text!r}: the fraction of dimensions {method} keeps must be "
                          f"a number in (0, 1], got {fraction!r}") from None
    if not 0.0 < value <= 1.0:
        raise ConfigError(f"storage spec {text!r}: the fraction of dimensions {method} keeps must be "
                          f"in (0, 1], got {value:g}")
    return ReducerSpec(method, value)


def parse_spec(text: object) -> StorageSpec:
    """Parse a spec string (case and surrounding spaces ignored), raising ConfigError with the valid
    names when it is malformed."""
    if not isinstance(text, str):
        raise ConfigError(f"storage spec must be a string such as 'pca:0.5+float8_e4m3', got "
                          f"{type(text).__name__}")
    cleaned = text.strip().lower().replace(" ", "")
    if not cleaned:
        raise ConfigError(f"storage spec is empty; a spec is {GRAMMAR}")
    parts = cleaned.split("+")
    if len(parts) > 2 or not all(parts):
        raise ConfigError(f"storage spec {text!r}: expected at most one reducer and one quantiser "
                          f"joined by '+'; a spec is {GRAMMAR}")
    if len(parts) == 1 and ":" not in parts[0]:
        if parts[0] in REDUCERS:
            raise ConfigError(f"storage spec {text!r}: reducer {parts[0]!r} needs the fraction of "
                              f"dimensions to keep, for example '{parts[0]}:0.5'")
        if parts[0] not in QUANTISERS:
            raise _unknown(parts[0], "quantiser", QUANTISERS, text)
        return StorageSpec(parts[0])
    if ":" not in parts[0]:
        raise ConfigError(f"storage spec {text!r}: the reducer comes first, with its fraction "
                          f"(REDUCER:FRACTION+QUANTISER); a spec is {GRAMMAR}")
    reducer = _parse_reducer(parts[0], text)
    quantiser = parts[1] if len(parts) == 2 else "float32"
    if quantiser not in QUANTISERS:
        raise _unknown(quantiser.partition(":")[0], "quantiser", QUANTISERS, text)
    return StorageSpec(quantiser, reducer)


def canonical_spec(text: object) -> str:
    """The canonical form of a spec (the attrs converter of the compressor's ``spec``)."""
    return str(parse_spec(text))
