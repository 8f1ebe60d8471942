"""Validators for attrs configs, with short messages that name the parameter.

Every component's ``Config`` (and the experiment file's tables) uses them the attrs way::

    from embedlab import validators as v

    @attrs.frozen
    class Config:
        nlist: int = attrs.field(default=256, validator=v.positive_int)
        metric: str = attrs.field(default="ip", validator=v.choice("ip", "cosine", "l2"))
        dropout: float = attrs.field(default=0.1, validator=v.probability)
        seed: int = attrs.field(default=0, validator=v.seed)
        ef: int | None = attrs.field(default=None, validator=v.optional(v.positive_int))

A failing check raises :class:`InvalidValue` (a ``ConfigError``, hence a ``ValueError``):
``nlist must be a positive integer, got True``. :func:`embedlab.components.make_config` turns
it, and the errors of attrs' own validators, into a :class:`~embedlab.errors.ConfigError` that
names the component and the parameter and never shows attrs internals; the experiment runner adds
the pipeline and the TOML line. Booleans are never accepted as numbers (``True`` is an ``int`` in Python).
"""

from __future__ import annotations

import math
import numbers
import re
from typing import Any, Callable, Mapping

import attrs

from embedlab.errors import ConfigError

#: Seeds are passed to numpy, torch and FAISS (a C ``int``): 0 .. 2**31 - 1 suits them all.
MAX_SEED = 2**31 - 1

Validator = Callable[[Any, "attrs.Attribute[Any]", Any], None]


class InvalidValue(ConfigError):
    """A parameter failed its check: its ``name`` and a ``phrase`` that completes the sentence
    (``must be a positive integer, got True``). A :class:`~embedlab.errors.ConfigError`, so a
    config built directly in Python fails with an embedlab error too."""

    def __init__(self, name: str, phrase: str) -> None:
        self.name, self.phrase = name, phrase
        super().__init__(f"{name} {phrase}")


def _invalid(name: str, wanted: str, value: Any) -> InvalidValue:
    return InvalidValue(name, f"must be {wanted}, got {shown(value)}")


def shown(value: Any) -> str:
    """repr of a value, at most 60 characters."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_real(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def int_in(low: int | None = None, high: int | None = None) -> Validator:
    """An integer (not a bool) with ``low <= value <= high`` (either bound may be None)."""
    if low is not None and high is not None:
        wanted = f"an integer in [{low}, {high}]"
    elif low is not None:
        wanted = {0: "an integer >= 0", 1: "a positive integer"}.get(low, f"an integer >= {low}")
    else:
        wanted = "an integer" if high is None else f"an integer <= {high}"

    def check(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
        if not _is_int(value) or (low is not None and value < low) or (high is not None and value > high):
            raise _invalid(attribute.name, wanted, value)

    return check


def real_in(low: float | None = None, high: float | None = None, *, low_open: bool = False,
            high_open: bool = False) -> Validator:
    """A finite real number (not a bool) between ``low`` and ``high`` (open ends excluded)."""
    parts = []
    if low is not None:
        parts.append(f"{'>' if low_open else '>='} {low}")
    if high is not None:
        parts.append(f"{'<' if high_open else '<='} {high}")
    wanted = "a finite number" + (" " + " and ".join(parts) if parts else "")

    def check(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
        ok = _is_real(value) and math.isfinite(value)
        if ok and low is not None:
            ok = value > low if low_open else value >= low
        if ok and high is not None:
            ok = value < high if high_open else value <= high
        if not ok:
            raise _invalid(attribute.name, wanted, value)

    return check


positive_int = int_in(1)
"""An integer >= 1 (bools rejected)."""
non_negative_int = int_in(0)
"""An integer >= 0 (bools rejected)."""
seed = int_in(0, MAX_SEED)
"""A random seed: an integer in [0, 2**31 - 1]."""
probability = real_in(0.0, 1.0)
"""A real number in [0, 1]."""
positive_real = real_in(0.0, low_open=True)
"""A finite real number > 0."""
finite_real = real_in()
"""Any finite real number."""


def choice(*options: Any) -> Validator:
    """One of ``options`` (compared with ``==``; ``True`` never passes for ``1``)."""
    listed = ", ".join(shown(o) for o in options)

    def check(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
        if not any(_same(value, option) for option in options):
            raise _invalid(attribute.name, f"one of {listed}", value)

    return check


def _same(value: Any, option: Any) -> bool:
    try:
        return isinstance(value, bool) == isinstance(option, bool) and bool(value == option)
    except (TypeError, ValueError):  # e.g. an array
        return False


def boolean(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
    """``True`` or ``False`` (not 0/1, not a string)."""
    if not isinstance(value, bool):
        raise _invalid(attribute.name, "true or false", value)


def non_empty_str(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
    """A non-empty string."""
    if not isinstance(value, str) or not value:
        raise _invalid(attribute.name, "a non-empty string", value)


def matches(pattern: str, description: str) -> Validator:
    """A string matching ``pattern`` in full; ``description`` says what that means."""
    compiled = re.compile(pattern)

    def check(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
        if not isinstance(value, str) or compiled.fullmatch(value) is None:
            raise _invalid(attribute.name, description, value)

    return check


def optional(validator: Validator) -> Validator:
    """``None`` or a value that passes ``validator``."""

    def check(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
        if value is not None:
            validator(instance, attribute, value)

    return check


def list_of(validator: Validator, *, min_length: int = 0) -> Validator:
    """A list or tuple of at least ``min_length`` items, each passing ``validator``."""

    def check(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
        if not isinstance(value, (list, tuple)) or len(value) < min_length:
            wanted = "a list" + (f" of at least {min_length} item(s)" if min_length else "")
            raise _invalid(attribute.name, wanted, value)
        for item in value:
            try:
                validator(instance, attribute, item)
            except InvalidValue as error:
                raise InvalidValue(attribute.name, f"items {error.phrase}") from None

    return check


#: What a parameter annotated with these types (alone, together, or with ``None``) must be.
_DECLARED = {"int": ("an integer", _is_int), "float": ("a number", _is_real),
             "bool": ("true or false", lambda x: isinstance(x, bool) or type(x).__name__ == "bool")}  # numpy's too


def _type_names(annotation: Any) -> set[str] | None:
    """The names in a simple annotation (``int``, ``"float | None"``, ``Optional[int]``), or None
    when it is anything else."""
    if isinstance(annotation, str):
        text = annotation.replace(" ", "")
        optional = re.fullmatch(r"(?:typing\.)?Optional\[(\w+)\]", text)
        names = {optional[1], "None"} if optional else set(text.split("|"))
    elif isinstance(annotation, type):
        names = {annotation.__name__}
    else:
        args = getattr(annotation, "__args__", None)
        if not args or not all(isinstance(a, type) for a in args):
            return None
        names = {a.__name__ for a in args}
    names = {"None" if n == "NoneType" else n for n in names}
    return names if names - {"None"} and names <= {*_DECLARED, "None"} else None


def declared_type_problem(annotation: Any, value: Any) -> str | None:
    """Why ``value`` does not fit a parameter annotated ``annotation`` (``must be an integer, got
    True``), or None when it fits or the annotation is not one of ``int``, ``float``, ``bool``
    (with ``None``). Configs whose fields have no validator still reject a TOML ``true`` for a
    count or ``"8"`` for a dimension before anything runs."""
    names = _type_names(annotation)
    if names is None or (value is None and "None" in names):
        return None
    kinds = [_DECLARED[n] for n in sorted(names - {"None"})]
    if any(fits(value) for _, fits in kinds) or ("float" in names and _is_int(value)):
        return None
    wanted = " or ".join(text for text, _ in kinds) + (" or none" if "None" in names else "")
    return f"must be {wanted}, got {shown(value)}"


def check_declared_types(config_class: type, params: Mapping[str, Any]) -> None:
    """:class:`InvalidValue` for the first of ``params`` whose value does not fit the type its
    attrs field declares (:func:`declared_type_problem`); fields with a converter are left to it."""
    for field in attrs.fields(config_class):
        key = field.alias or field.name
        if key in params and field.converter is None:
            problem = declared_type_problem(field.type, params[key])
            if problem is not None:
                raise InvalidValue(key, problem)


_ATTRS_TYPE = re.compile(r"^'(\w+)' must be <class '([\w.]+)'> \(got (.*) that is a <class '([\w.]+)'>\)\.?$", re.S)
_ATTRS_IN = re.compile(r"^'(\w+)' must be in (.*) \(got (.*)\)$", re.S)
_ATTRS_COMPARE = re.compile(r"^'(\w+)' must be ([<>=]+ .*): (.*)$", re.S)
_ATTRS_LENGTH = re.compile(r"^Length of '(\w+)' must be ([<>=]+) (\d+): (\d+)$", re.S)


def explain(error: BaseException) -> tuple[str | None, str]:
    """``(parameter name or None, phrase)`` of a config error, the phrase completing a sentence
    that starts with the name (``must be int, got 'x' (str)``): from an :class:`InvalidValue`, from
    one of attrs' own validators (its message without the ``Attribute(...)`` attrs attaches, in
    the same wording as ours), or from any other ``ValueError``/``TypeError`` (its message)."""
    if isinstance(error, InvalidValue):
        return error.name, error.phrase
    args = error.args
    name = args[1].name if len(args) > 1 and isinstance(args[1], attrs.Attribute) else None
    text = str(args[0]) if args else str(error)
    found = _ATTRS_TYPE.match(text)
    if found:
        wanted, got = found[2].rsplit(".", 1)[-1], found[4].rsplit(".", 1)[-1]
        return found[1], f"must be {wanted}, got {found[3]} ({got})"
    found = _ATTRS_IN.match(text)
    if found:
        return found[1], f"must be one of {found[2].strip('()[]{}')}, got {found[3]}"
    found = _ATTRS_COMPARE.match(text)
    if found:
        return found[1], f"must be {found[2]}, got {found[3]}"
    found = _ATTRS_LENGTH.match(text)
    if found:
        return found[1], f"must have {found[2]} {found[3]} item(s), got {found[4]}"
    missing = re.search(r"missing \d+ required (?:keyword-only |positional )?arguments?: (.*)$", text)
    if missing:
        names = re.findall(r"'(\w+)'", missing[1])
        return None, f"missing required parameter(s) {', '.join(names)}"
    return name, text


def sentence(error: BaseException) -> str:
    """The whole message: ``name phrase``, or the phrase alone when no parameter is known."""
    name, phrase = explain(error)
    return f"{name} {phrase}" if name and not phrase.startswith(f"{name} ") else phrase
