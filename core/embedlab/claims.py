"""Headline claims that the core and each plugin declare in a ``claims.toml`` shipped with the package.

A claim states what a paper (or reference implementation) reports, what we measured, on which
data, the command that reproduces our number, and a status with one line of why. ``embedlab
claims`` prints them across the installed plugins; the headline table of docs/benchmarks.md is
generated from them (:func:`render_markdown`), so every number there has a command and a status.

File format (``<package>/claims.toml``, next to the package's ``__init__.py``)::

    format = 1
    paper = "Faggioli et al., DIME, SIGIR 2024"      # default for the claims' `paper`

    [[claims]]
    id = "prf-within-one-point"                        # unique in the file: lowercase, digits, '-'
    what = "PRF-DIME (k=5) at or within 1 point of full dimensions"
    paper_number = "up to +55.9% nDCG@10"
    paper_setting = "TREC DL'19/'20, Robust04; TAS-B, Contriever, ANCE (768-d)"
    ours = "-1.05 points (best keep fraction < 1)"
    dataset = "SciFact test (300 q), MiniLM"
    command = "python benchmarks/bench_dime.py"
    status = "not reproduced"                          # one of STATUSES
    why = "never above full dimensions with 384-d MiniLM on either dataset"
    # optional: headline = false (keep it out of the docs' headline table), docs = "section title",
    #           speed = true with load = "12.7-17.0" (load average of the run that gave the number)
"""

from __future__ import annotations

import re
import shlex
from importlib import metadata, resources, util
from pathlib import Path
from typing import Any, Iterable, Mapping

import attrs

from embedlab.errors import ConfigError

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]

CLAIMS_FILE = "claims.toml"
FORMAT = 1
STATUSES = ("reproduced", "partly", "not reproduced", "not tested")
#: A speed number measured at this load average or above must be rerun on a quiet machine.
QUIET_LOAD = 1.5
_REQUIRED = ("id", "what", "paper", "paper_number", "paper_setting", "ours", "dataset", "command",
             "status", "why")
_OPTIONAL = ("headline", "speed", "load", "docs")
_ID = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
_SHELL = re.compile(r"(&&|\|\||[|;<>`]|\$\()")


class ClaimsError(ConfigError):
    """A claims file is missing, unreadable or malformed."""


def _text(name: str) -> Any:
    def check(instance: object, attribute: attrs.Attribute, value: object) -> None:
        if not isinstance(value, str) or not value.strip():
            raise ClaimsError(f"{name}: `{attribute.name}` must be a non-empty string, got {value!r}")
    return check


def _loads(load: str) -> list[float]:
    return [float(part) for part in re.findall(r"\d+(?:\.\d+)?", load)]


@attrs.frozen
class Claim:
    """One headline claim of a plugin (see the module docstring for the fields)."""

    plugin: str
    id: str
    what: str
    paper: str
    paper_number: str
    paper_setting: str
    ours: str
    dataset: str
    command: str
    status: str
    why: str
    headline: bool = True
    speed: bool = False
    load: str = ""
    docs: str = ""

    def __attrs_post_init__(self) -> None:
        where = f"claim {self.plugin}/{self.id}"
        for name in _REQUIRED:
            _text(where)(self, attrs.fields_dict(Claim)[name], getattr(self, name))
        if not _ID.match(self.id):
            raise ClaimsError(f"{where}: `id` must be lowercase letters and digits joined by '-'")
        if self.status not in STATUSES:
            raise ClaimsError(f"{where}: `status` {self.status!r} is not one of {', '.join(STATUSES)}")
        if "\n" in self.command.replace("\\\n", " ") or _SHELL.search(self.command):
            raise ClaimsError(f"{where}: `command` must be one command on one line (no pipes, `&&`, `;`, "
                              f"redirections or substitutions): {self.command!r}")
        try:
            shlex.split(self.command)
        except ValueError as error:
            raise ClaimsError(f"{where}: `command` does not parse as a shell command ({error})") from None
        if self.speed and not self.load.strip():
            raise ClaimsError(f"{where}: a speed claim (`speed = true`) must state the load average of its "
                              "run in `load`, e.g. load = \"0.4\", \"12.7-17.0\" or \"unknown\"")

    @property
    def rerun_quiet(self) -> bool:
        """A speed number measured at load average >= QUIET_LOAD (or at an unknown load): to be rerun
        on a quiet machine."""
        loads = _loads(self.load)
        return self.speed and (not loads or max(loads) >= QUIET_LOAD)

    @property
    def status_text(self) -> str:
        if self.rerun_quiet:
            return f"{self.status} (under load {self.load}, to be rerun quiet)"
        if self.speed:
            return f"{self.status} (load {self.load})"
        return self.status

    def to_json(self) -> dict[str, Any]:
        return {**attrs.asdict(self), "rerun_quiet": self.rerun_quiet}


def parse_claims(text: str, plugin: str, source: str = CLAIMS_FILE) -> list[Claim]:
    """The claims of one ``claims.toml`` text; errors name ``source`` and the claim."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ClaimsError(f"{source}: not valid TOML ({error})") from None
    unknown = sorted(set(raw) - {"format", "paper", "claims"})
    if unknown:
        raise ClaimsError(f"{source}: unknown top-level key(s) {', '.join(unknown)}; expected format, paper, claims")
    if raw.get("format") != FORMAT:
        raise ClaimsError(f"{source}: `format = {FORMAT}` is required (got {raw.get('format')!r})")
    entries = raw.get("claims")
    if not isinstance(entries, list) or not entries:
        raise ClaimsError(f"{source}: no [[claims]] table; declare at least one claim (status \"not tested\" "
                          "is a valid claim)")
    claims, seen = [], set()
    for number, entry in enumerate(entries, 1):
        if not isinstance(entry, dict):
            raise ClaimsError(f"{source}: claim {number} is not a table")
        fields = {"paper": raw.get("paper", ""), **entry}
        unknown = sorted(set(fields) - set(_REQUIRED) - set(_OPTIONAL))
        missing = [name for name in _REQUIRED if name not in fields]
        if unknown or missing:
            parts = ([f"unknown key(s) {', '.join(unknown)}"] if unknown else []) + \
                    ([f"missing {', '.join(missing)}"] if missing else [])
            raise ClaimsError(f"{source}: claim {number} ({entry.get('id', '?')}): {'; '.join(parts)}")
        for flag in ("headline", "speed"):
            if flag in fields and not isinstance(fields[flag], bool):
                raise ClaimsError(f"{source}: claim {number}: `{flag}` must be true or false")
        for name in ("load", "docs"):
            if name in fields and not isinstance(fields[name], str):
                raise ClaimsError(f"{source}: claim {number}: `{name}` must be a string")
        claim = Claim(plugin=plugin, **fields)
        if claim.id in seen:
            raise ClaimsError(f"{source}: claim id {claim.id!r} appears twice")
        seen.add(claim.id)
        claims.append(claim)
    return claims


def read_claims(path: Path | str, plugin: str) -> list[Claim]:
    """Parse the claims file at ``path``."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise ClaimsError(f"{path}: cannot read the claims file ({error.strerror or error})") from None
    return parse_claims(text, plugin, str(path))


@attrs.frozen
class ClaimSource:
    """The claims one installed distribution ships, or why they could not be read."""

    plugin: str
    distribution: str
    version: str
    path: str
    claims: tuple[Claim, ...] = ()
    error: str = ""


def _package_file(package: str) -> Path | None:
    """``claims.toml`` inside an importable top-level package, located without importing it."""
    try:
        spec = util.find_spec(package)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        candidate = Path(location) / CLAIMS_FILE
        if candidate.is_file():
            return candidate
    return Path(next(iter(spec.submodule_search_locations))) / CLAIMS_FILE


def _source(plugin: str, distribution: str, version: str, path: Path | None) -> ClaimSource:
    if path is None:
        return ClaimSource(plugin, distribution, version, "", error="package not found")
    try:
        return ClaimSource(plugin, distribution, version, str(path), tuple(read_claims(path, plugin)))
    except ClaimsError as invalid:
        error = invalid
        if not path.is_file():
            error = ClaimsError(f"no {CLAIMS_FILE} in the package (see docs/plugin-authors.md, "
                                "'Declare your claims')")
        return ClaimSource(plugin, distribution, version, str(path), error=str(error))


def installed_claims(group: str = "embedlab") -> list[ClaimSource]:
    """The core's claims, then each installed plugin's (entry points of ``group``), by plugin name.

    Files are found next to each plugin's package without importing it, so a plugin that fails
    to load still shows its claims."""
    import embedlab

    core = resources.files("embedlab") / CLAIMS_FILE
    sources = [_source("embedlab", "embedlab", embedlab.__version__, Path(str(core)))]
    seen = {"embedlab"}
    for ep in sorted(metadata.entry_points(group=group), key=lambda e: e.name):
        if ep.name in seen:
            continue
        seen.add(ep.name)
        dist = getattr(ep, "dist", None)
        package = ep.value.split(":")[0].split(".")[0]
        sources.append(_source(ep.name, dist.metadata["Name"] if dist else "unknown",
                               dist.version if dist else "unknown", _package_file(package)))
    return sources


def select(sources: Iterable[ClaimSource], plugins: Iterable[str] = (), statuses: Iterable[str] = (),
           headline_only: bool = False) -> list[Claim]:
    """The claims of ``sources`` filtered by plugin names, statuses and the headline flag."""
    plugins, statuses = set(plugins), set(statuses)
    unknown = statuses - set(STATUSES)
    if unknown:
        raise ClaimsError(f"unknown status(es) {', '.join(sorted(unknown))}; use {', '.join(STATUSES)}")
    return [claim for source in sources for claim in source.claims
            if (not plugins or claim.plugin in plugins) and (not statuses or claim.status in statuses)
            and (claim.headline or not headline_only)]


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def render_markdown(claims: Iterable[Claim]) -> str:
    """The headline table of docs/benchmarks.md: one row per claim, in the order given."""
    lines = ["| plugin | claim | paper / reference: number (setting) | ours (data) | status | why | command |",
             "|---|---|---|---|---|---|---|"]
    for c in claims:
        lines.append(f"| {c.plugin} | {_cell(c.what)} | {_cell(c.paper)}: {_cell(c.paper_number)} "
                     f"({_cell(c.paper_setting)}) | {_cell(c.ours)} ({_cell(c.dataset)}) | "
                     f"**{c.status_text}** | {_cell(c.why)} | `{_cell(c.command)}` |")
    return "\n".join(lines) + "\n"


def render_text(sources: Iterable[ClaimSource], claims: Iterable[Claim]) -> str:
    """A readable listing, grouped by plugin; sources that failed are listed with their error."""
    by_plugin: dict[str, list[Claim]] = {}
    for claim in claims:
        by_plugin.setdefault(claim.plugin, []).append(claim)
    out: list[str] = []
    for source in sources:
        if source.error:
            out.append(f"{source.plugin} ({source.distribution} {source.version}): no claims: {source.error}")
            continue
        if source.plugin not in by_plugin:
            continue
        out.append(f"{source.plugin} ({source.distribution} {source.version})")
        for c in by_plugin[source.plugin]:
            out += [f"  [{c.status_text}] {c.what}",
                    f"      paper:   {c.paper}: {c.paper_number} ({c.paper_setting})",
                    f"      ours:    {c.ours} ({c.dataset})",
                    f"      why:     {c.why}",
                    f"      command: {c.command}"]
    return "\n".join(out)


def counts(claims: Iterable[Claim]) -> Mapping[str, int]:
    """Number of claims per status, in STATUSES order."""
    found = [c.status for c in claims]
    return {status: found.count(status) for status in STATUSES}


BEGIN_MARK = "<!-- claims:begin (generated from the claims.toml files by `embedlab claims --markdown --write FILE`) -->"
END_MARK = "<!-- claims:end -->"


def replace_generated(document: str, table: str) -> str:
    """``document`` with the text between BEGIN_MARK and END_MARK replaced by ``table``."""
    start, end = document.find(BEGIN_MARK), document.find(END_MARK)
    if start < 0 or end < start:
        raise ClaimsError(f"the document has no generated claims block; add the lines\n{BEGIN_MARK}\n{END_MARK}\n"
                          "where the table belongs")
    return document[:start + len(BEGIN_MARK)] + "\n" + table + document[end:]


def generated_block(document: str) -> str:
    """The table currently between the markers of ``document`` ('' when there are no markers)."""
    start, end = document.find(BEGIN_MARK), document.find(END_MARK)
    if start < 0 or end < start:
        return ""
    return document[start + len(BEGIN_MARK):end].lstrip("\n")
