"""The plugin hook. A plugin module implements it and exposes itself under the
``embedlab`` entry-point group::

    # embedlab_myplugin/__init__.py
    import embedlab

    EMBEDLAB_API_VERSION = "1.1"

    @embedlab.hookimpl
    def embedlab_register(registry):
        registry.add("compressor", "my-pq", MyPQ)   # MyPQ.kind == "compressor", MyPQ.name == "my-pq"

    # pyproject.toml
    [project.entry-points.embedlab]
    myplugin = "embedlab_myplugin"
"""

from __future__ import annotations

import pluggy

PROJECT = "embedlab"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def embedlab_register(registry):  # type: ignore[no-untyped-def]
    """Register named component factories with ``registry.add(kind, name, factory)``.

    ``kind`` is one of the core kinds (encoder, compressor, index, reranker, metric, dataset) or a
    kind that a plugin declares (plugin API 1.1). A factory is a callable (usually a
    :class:`embedlab.Component` subclass, whose ``kind`` and ``name`` class attributes must equal
    the registered ones) taking the component's parameters as keyword arguments; a dataset factory
    returns a :class:`embedlab.Dataset`. ``name`` is letters, digits, ``-``, ``_`` and ``.``; when
    another plugin registers the same ``(kind, name)`` both keep it and users write
    ``DISTRIBUTION:NAME`` to choose (the bare name is then ambiguous).

    API 1.1: ``registry.add_kind(kind, description=...)`` declares a new component kind (say
    ``loss``) that this and other plugins can then register components of, in any load order. A
    plugin registering components of a declared kind needs the declaring plugin installed (make it a
    dependency); a kind can be declared by one plugin only, and not shadow a core kind::

        @embedlab.hookimpl
        def embedlab_register(registry):
            registry.add_kind("loss", description="training objectives: loss(scores, labels) -> float")
            registry.add("loss", "infonce", InfoNCE)

    Everything a hook registers is staged and committed only when it returns: a hook that raises
    (``sys.exit`` included) registers nothing and its plugin is reported as failed.
    """


@hookspec
def embedlab_cli(subparsers):  # type: ignore[no-untyped-def]
    """Optional: add subcommands to the ``embedlab`` command line.

    ``subparsers`` is argparse's sub-parser action; add a parser and set ``func`` to a callable
    taking the parsed arguments and returning the exit status. The hook runs only when the command
    line needs plugin commands (the first argument is not a core command, or ``embedlab --help``),
    and the plugin module is imported for it: keep that import cheap (import torch where it is used)::

        @embedlab.hookimpl
        def embedlab_cli(subparsers):
            parser = subparsers.add_parser("pareto", help="storage vs quality sweep")
            parser.set_defaults(func=run)
    """
