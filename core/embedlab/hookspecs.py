"""The plugin hook. A plugin module implements it and exposes itself under the
``embedlab`` entry-point group::

    # embedlab_myplugin/__init__.py
    import embedlab

    EMBEDLAB_API_VERSION = "1.0"

    @embedlab.hookimpl
    def embedlab_register(registry):
        registry.add("compressor", "my-pq", MyPQ)

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

    ``kind`` is one of encoder, compressor, index, reranker, metric, dataset. A factory is a
    callable (usually a :class:`embedlab.Component` subclass) taking the component's parameters
    as keyword arguments; a dataset factory returns a :class:`embedlab.Dataset`.
    """


@hookspec
def embedlab_cli(subparsers):  # type: ignore[no-untyped-def]
    """Optional: add subcommands to the ``embedlab`` command line.

    ``subparsers`` is argparse's sub-parser action; add a parser and set ``func`` to a callable
    taking the parsed arguments and returning the exit status::

        @embedlab.hookimpl
        def embedlab_cli(subparsers):
            parser = subparsers.add_parser("pareto", help="storage vs quality sweep")
            parser.set_defaults(func=run)
    """
