"""Check that a claim's reproducing command parses, without running it.

Forms understood (after leading ``NAME=value`` assignments and ``env -u NAME`` are set aside):

* ``python SCRIPT.py ARGS`` and ``python -m MODULE ARGS``: the script or module runs until its
  ``argparse`` parser has parsed ARGS, then stops (``ArgumentParser.parse_args`` is intercepted);
  an argparse error, a missing file or an import error fails the check. Scripts must therefore
  parse their arguments with ``parse_args`` before doing any work.
* ``embedlab ARGS`` (and any other console script with an entry point): the same, through the
  script's entry point; for ``embedlab run CONFIG`` the experiment file must load too.
* ``pytest PATHS``: every path exists. ``bash SCRIPT``: the script exists and ``bash -n`` accepts it.
* ``tox -e ENVS``: every environment is listed in tox.ini.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import re
import runpy
import shlex
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any, Callable, Iterator

from embedlab.claims import Claim, ClaimsError
from embedlab.errors import EmbedlabError

_ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")
_PYTHONS = {"python", "python3", sys.executable}


class _Parsed(BaseException):
    """Raised by the intercepted ``parse_args`` to stop a command once its arguments parsed."""

    def __init__(self, namespace: argparse.Namespace) -> None:
        super().__init__()
        self.namespace = namespace


def split_command(command: str) -> tuple[dict[str, str], list[str]]:
    """(environment assignments, argv) of a one-line command; ``env -u NAME`` unsets are dropped."""
    words = shlex.split(command.replace("\\\n", " "))
    env: dict[str, str] = {}
    if words and words[0] == "env":
        words = words[1:]
        while words and (words[0] in ("-u", "--unset") or _ASSIGNMENT.match(words[0])):
            if words[0] in ("-u", "--unset"):
                words = words[2:]
            else:
                name, _, value = words.pop(0).partition("=")
                env[name] = value
    while words and _ASSIGNMENT.match(words[0]):
        name, _, value = words.pop(0).partition("=")
        env[name] = value
    if not words:
        raise ClaimsError(f"command {command!r} runs no program")
    return env, words


@contextlib.contextmanager
def _intercepted(argv: list[str], path: str | None) -> Iterator[io.StringIO]:
    original_parse, original_argv, original_path = argparse.ArgumentParser.parse_args, sys.argv, list(sys.path)

    def parse_args(self: argparse.ArgumentParser, args: Any = None, namespace: Any = None) -> argparse.Namespace:
        raise _Parsed(original_parse(self, args, namespace))

    stderr = io.StringIO()
    argparse.ArgumentParser.parse_args = parse_args  # type: ignore[method-assign]
    sys.argv = argv
    if path is not None:
        sys.path.insert(0, path)
    try:
        with contextlib.redirect_stderr(stderr), contextlib.redirect_stdout(io.StringIO()):
            yield stderr
    finally:
        argparse.ArgumentParser.parse_args = original_parse  # type: ignore[method-assign]
        sys.argv, sys.path[:] = original_argv, original_path


def _parse_with(run: Callable[[], object], argv: list[str], path: str | None, what: str) -> argparse.Namespace:
    """Run ``run`` until its argparse parser returns; the parsed namespace."""
    try:
        with _intercepted(argv, path) as stderr:
            try:
                run()
            except _Parsed as parsed:
                return parsed.namespace
            except SystemExit as error:
                message = stderr.getvalue().strip().splitlines()
                raise ClaimsError(f"{what}: arguments rejected (exit status {error.code}): "
                                  f"{message[-1] if message else 'no message'}") from None
    except ClaimsError:
        raise
    except Exception as error:  # noqa: BLE001 - report whatever stopped the command
        raise ClaimsError(f"{what}: failed before parsing its arguments: {type(error).__name__}: {error}") from None
    raise ClaimsError(f"{what}: finished without calling argparse's parse_args, so its arguments cannot be "
                      "checked")


def _python(words: list[str], root: Path) -> argparse.Namespace:
    if len(words) >= 3 and words[1] == "-m":
        module = words[2]
        return _parse_with(lambda: runpy.run_module(module, run_name="__main__", alter_sys=True),
                           [module, *words[3:]], None, f"python -m {module}")
    if len(words) >= 2 and words[1].endswith(".py"):
        script = root / words[1]
        if not script.is_file():
            raise ClaimsError(f"script {words[1]} does not exist under {root}")
        return _parse_with(lambda: runpy.run_path(str(script), run_name="__main__"),
                           [str(script), *words[2:]], str(script.parent), words[1])
    raise ClaimsError(f"python command {' '.join(words)!r}: expected `python SCRIPT.py ...` or `python -m MODULE ...`")


def _console_script(words: list[str], root: Path) -> argparse.Namespace:
    found = [ep for ep in metadata.entry_points(group="console_scripts") if ep.name == words[0]]
    if not found:
        raise ClaimsError(f"program {words[0]!r} is not an installed console script (and not python, embedlab, "
                          "pytest, bash or tox)")
    entry = found[0].load()
    namespace = _parse_with(lambda: entry(words[1:]) if words[0] == "embedlab" else entry(),
                            words, None, words[0])
    if words[0] == "embedlab" and getattr(namespace, "command", None) == "run":
        from embedlab.experiment import load_config

        config = Path(namespace.config)
        try:
            load_config(config if config.is_absolute() else root / config)
        except EmbedlabError as error:
            raise ClaimsError(f"embedlab run {namespace.config}: {error}") from None
    return namespace


def _paths_exist(words: list[str], root: Path) -> None:
    paths = [w.split("::")[0] for w in words[1:] if not w.startswith("-")]
    missing = [p for p in paths if not (root / p).exists()]
    if missing:
        raise ClaimsError(f"{words[0]}: path(s) {', '.join(missing)} do not exist under {root}")


def _bash(words: list[str], root: Path) -> None:
    if len(words) < 2:
        raise ClaimsError("bash: no script given")
    script = root / words[1]
    if not script.is_file():
        raise ClaimsError(f"bash: script {words[1]} does not exist under {root}")
    checked = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True, check=False)
    if checked.returncode:
        raise ClaimsError(f"bash -n {words[1]}: {checked.stderr.strip()}")


def _expand_braces(text: str) -> list[str]:
    match = re.search(r"\{([^{}]*)\}", text)
    if match is None:
        return [text]
    head, tail = text[:match.start()], text[match.end():]
    return [out for part in match.group(1).split(",") for out in _expand_braces(head + part.strip() + tail)]


def tox_environments(tox_ini: Path) -> set[str]:
    """Environment names of a tox.ini: its ``env_list`` (braces expanded) and ``[testenv:NAME]`` sections."""
    text = tox_ini.read_text(encoding="utf-8")
    names: set[str] = set()
    listed = re.search(r"^env_list\s*=\s*(.+?)(?=^\S|\Z)", text, re.M | re.S)
    if listed:
        items = re.split(r",\s*(?![^{]*\})", " ".join(listed.group(1).split()))
        names.update(name for item in items for name in _expand_braces(item.strip()) if name)
    for section in re.findall(r"^\[testenv:([^\]]+)\]", text, re.M):
        names.update(name for item in re.split(r",\s*(?![^{]*\})", section) for name in _expand_braces(item))
    return names


def _tox(words: list[str], root: Path) -> None:
    envs = [w for i, w in enumerate(words) if i > 0 and words[i - 1] == "-e"]
    known = tox_environments(root / "tox.ini")
    missing = [e for group in envs for e in group.split(",") if e not in known]
    if not envs or missing:
        raise ClaimsError(f"tox: environment(s) {', '.join(missing) or '(none given with -e)'} not in tox.ini")


def check_command(command: str, root: Path | str = ".") -> None:
    """Raise :class:`ClaimsError` when ``command`` (relative to the repository ``root``) does not parse."""
    root = Path(root).resolve()
    env, words = split_command(command)
    program = words[0]
    saved = {name: os.environ.get(name) for name in env}
    cwd = Path.cwd()
    os.environ.update(env)
    os.chdir(root)
    try:
        if program in _PYTHONS:
            _python(words, root)
        elif program == "pytest":
            _paths_exist(words, root)
        elif program in ("bash", "sh"):
            _bash(words, root)
        elif program == "tox":
            _tox(words, root)
        else:
            _console_script(words, root)
    finally:
        os.chdir(cwd)
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def check_claims(claims: list[Claim], root: Path | str = ".") -> dict[str, str]:
    """``{"plugin/id": error}`` for every claim whose command does not parse (empty when all do)."""
    errors: dict[str, str] = {}
    for claim in claims:
        try:
            check_command(claim.command, root)
        except ClaimsError as error:
            errors[f"{claim.plugin}/{claim.id}"] = str(error)
    return errors
