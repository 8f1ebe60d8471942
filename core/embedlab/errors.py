"""Exception hierarchy: every error embedlab raises on purpose derives from `EmbedlabError`."""

from __future__ import annotations


class EmbedlabError(Exception):
    """Base class of embedlab's own errors."""


class InvalidInputError(EmbedlabError, ValueError):
    """Input data has the wrong shape, dtype, values (NaN/inf) or duplicate ids."""


class ConfigError(EmbedlabError, ValueError):
    """A configuration file or component parameter is invalid."""


class UnknownComponentError(EmbedlabError, LookupError):
    """No installed plugin provides a component of that kind and name."""


class PluginError(EmbedlabError):
    """A plugin could not be loaded or registered something invalid."""


class StateError(EmbedlabError):
    """Saved state on disk is missing, corrupted, truncated or belongs to another component."""


class NotFittedError(EmbedlabError, RuntimeError):
    """A trainable component was used before `fit` was called."""


class AmbiguousComponentError(EmbedlabError, LookupError):
    """Several installed plugins provide a component of that kind and name; the message says how
    to choose one (a qualified ``DISTRIBUTION:NAME``, or ``EMBEDLAB_DISABLE_PLUGINS``)."""
