"""Saved state: a directory with ``manifest.json`` and ``.npy``/raw files, checksummed, published
atomically as a whole (sub-parts included), never pickled.

Manifest fields: ``format_version``, ``kind``, ``name``, ``config``, ``distribution``, ``version``,
``meta`` (free JSON), ``files`` mapping each file name to its sha256 and size, and ``parts``
mapping each sub-part directory (a nested state saved with the parent) to the sha256 of its
manifest, so a part of another save is never mixed in.

Writing: :func:`save_state` stages everything, the ``parts`` too, in one directory and publishes
it with :func:`embedlab.atomic.atomic_directory`: after a kill, ``path`` holds the old state or the
new one. Reading: :func:`load_state` checks the manifest's structure, every file's size and sha256
(damage) and every ``.npy`` header against its file; loaders then check what the arrays mean
(forgery) with the :class:`SavedState` helpers and :mod:`embedlab.state_checks`.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any, Mapping, Sequence

import attrs
import numpy as np

from embedlab.atomic import atomic_directory, fsync_path, recover_directory
from embedlab.components import describe, make_config
from embedlab.errors import ConfigError, EmbedlabError, StateError
from embedlab.state_checks import (
    ARRAY_KINDS,
    check_array,
    check_field,
    check_offsets,
    check_range,
    read_npy,
    regular_file,
)

FORMAT_VERSION = 1
MANIFEST = "manifest.json"
#: Manifests are small; a larger one is refused before parsing.
MANIFEST_MAX_BYTES = 64 << 20
#: Longest name of an array, file or part (its ``.npy`` file must fit in 255 bytes).
NAME_MAX_BYTES = 200
_SHA256 = re.compile(r"[0-9a-f]{64}")
_MISSING = object()


def sha256_file(path: str | Path) -> str:
    """Hex sha256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _check_name(name: Any) -> None:
    if not isinstance(name, str) or not name or "/" in name or "\\" in name or "\0" in name \
            or name.startswith(".") or name == MANIFEST or len(name.encode("utf-8", "surrogatepass")) > NAME_MAX_BYTES:
        raise StateError(f"invalid state file name {name!r}")


class _HashingWriter:
    """A binary file that hashes and counts what is written to it."""

    def __init__(self, handle: Any) -> None:
        self.handle, self.digest, self.size = handle, hashlib.sha256(), 0

    def write(self, data: bytes) -> int:
        view = memoryview(data).cast("B")
        self.digest.update(view)
        self.size += view.nbytes
        return self.handle.write(view)

    def entry(self) -> dict[str, Any]:
        return {"sha256": self.digest.hexdigest(), "bytes": self.size}


def _write(file: Path, array: np.ndarray | None = None, payload: bytes | None = None) -> dict[str, Any]:
    with open(file, "xb") as handle:
        writer = _HashingWriter(handle)
        if array is not None:
            np.save(writer, array, allow_pickle=False)  # type: ignore[arg-type]
        else:
            writer.write(payload or b"")
    return writer.entry()


def _replaceable_state(target: Path) -> None:
    if not (target / MANIFEST).is_file() and any(target.iterdir()):
        raise StateError(f"refusing to overwrite {target}: it exists and is not an embedlab state directory")


def _anything(target: Path) -> None:
    return None


def save_state(path: str | Path, component: Any, arrays: Mapping[str, np.ndarray] | None = None,
               files: Mapping[str, bytes] | None = None, meta: Mapping[str, Any] | None = None,
               *, identity: Mapping[str, Any] | None = None, parts: Mapping[str, Any] | None = None,
               overwrite: bool = False) -> Path:
    """Write ``component``'s state to the directory ``path``, atomically as a whole.

    ``arrays`` become ``<name>.npy``; ``files`` are raw bytes (for example a FAISS index
    serialised by FAISS itself); ``parts`` are components saved (by their own ``save``) in the
    sub-directories ``path/<name>`` of the same staged directory, and published with it (``None``
    values are skipped). ``identity`` overrides :func:`embedlab.components.describe`. An existing
directory at ``path`` is replaced only when it is a state (or empty), any directory with
``overwrite=True`` (for caches that own their directories). Errors
    (a file at ``path``, over-long names, a full or read-only disk) raise :class:`StateError`;
    the previous state at ``path`` is then untouched.
    """
    check = _anything if overwrite else _replaceable_state
    with atomic_directory(path, check_existing=check) as directory:
        entries: dict[str, dict[str, Any]] = {}
        for name, array in (arrays or {}).items():
            _check_name(name)
            array = np.asarray(array)
            if array.dtype.hasobject:
                raise StateError(f"array {name!r} has dtype object, which would need pickle")
            entries[f"{name}.npy"] = _write(directory / f"{name}.npy", array=array)
        for name, payload in (files or {}).items():
            _check_name(name)
            if name in entries:
                raise StateError(f"state file {name!r} given twice")
            entries[name] = _write(directory / name, payload=payload)
        pinned = {}
        for name, part in (parts or {}).items():
            _check_name(name)
            if name in entries:
                raise StateError(f"state part {name!r} has the name of a file")
            if part is None:
                continue
            part.save(directory / name)
            manifest_file = directory / name / MANIFEST
            if not manifest_file.is_file():
                raise StateError(f"part {name!r} ({type(part).__name__}) did not save a state directory")
            pinned[name] = {"manifest_sha256": sha256_file(manifest_file)}
        manifest = {"format_version": FORMAT_VERSION, **(identity or describe(component)),
                    "meta": dict(meta or {}), "files": entries}
        if pinned:
            manifest["parts"] = pinned
        with open(directory / MANIFEST, "x", encoding="utf-8") as handle:
            json.dump(manifest, handle, indent=2, sort_keys=True, default=str)
        fsync_path(directory / MANIFEST)
    return Path(path)


def _check_manifest(manifest: Any, file: Path) -> dict[str, Any]:
    if not isinstance(manifest, dict):
        raise StateError(f"{file}: not an embedlab manifest (a JSON {type(manifest).__name__}, not an object)")
    if "files" not in manifest or "kind" not in manifest:
        raise StateError(f"{file}: not an embedlab manifest (no 'kind' or 'files')")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise StateError(f"{file}: format version {manifest.get('format_version')!r} is not "
                         f"supported (this embedlab reads {FORMAT_VERSION})")
    for field in ("kind", "name"):
        value = manifest.get(field)
        if not isinstance(value, str) or not value:
            raise StateError(f"{file}: field {field!r} must be a non-empty string, got {value!r:.60}")
    for field in ("config", "meta"):
        check_field(manifest.get(field, {}), f"{file}: field {field!r}", dict)
    entries = check_field(manifest["files"], f"{file}: field 'files'", dict)
    for name, entry in entries.items():
        _check_name(name)
        where = f"{file}: entry {name!r}"
        check_field(entry, where, dict)
        sha = entry.get("sha256")
        if not isinstance(sha, str) or not _SHA256.fullmatch(sha):
            raise StateError(f"{where}: 'sha256' must be 64 lowercase hex digits")
        check_field(entry.get("bytes"), f"{where} 'bytes'", int, minimum=0)
    for name, entry in check_field(manifest.get("parts", {}), f"{file}: field 'parts'", dict).items():
        _check_name(name)
        pin = check_field(entry, f"{file}: part {name!r}", dict).get("manifest_sha256")
        if name in entries or not isinstance(pin, str) or not _SHA256.fullmatch(pin):
            raise StateError(f"{file}: part {name!r} needs a 'manifest_sha256' of 64 hex digits")
    return manifest


def read_manifest(path: str | Path) -> dict[str, Any]:
    """Parse and check ``manifest.json`` of a state directory, with a clear error when absent or invalid."""
    root = Path(path)
    file = root / MANIFEST
    if not root.is_dir():
        raise StateError(f"{path}: not an embedlab state directory "
                         f"({'a file' if root.exists() else 'does not exist'})")
    if not file.is_file():
        raise StateError(f"{path}: not an embedlab state directory (no {MANIFEST})")
    info = regular_file(file)
    if info.st_size > MANIFEST_MAX_BYTES:
        raise StateError(f"{file}: {info.st_size} bytes, larger than any embedlab manifest")
    try:
        manifest = json.loads(file.read_bytes().decode("utf-8"))
    except (ValueError, UnicodeDecodeError, RecursionError) as error:
        raise StateError(f"{file}: corrupted manifest ({str(error)[:200]})") from None
    return _check_manifest(manifest, file)


def load_state(path: str | Path, *, kind: str | None = None, name: str | None = None,
               mmap: bool = False, verify: bool = True) -> SavedState:
    """Load and verify a state directory written by :func:`save_state`.

    Raises :class:`StateError` naming the bad file when a file is missing, truncated or edited
    (sha256 mismatch), when a ``.npy`` header does not match its file, when a part's manifest is
    not the one saved with this state, or when the state belongs to another kind or name of
    component. ``mmap=True`` memory-maps the arrays instead of reading them.
    """
    root = Path(path)
    recover_directory(root)
    manifest = read_manifest(root)
    for field, expected in (("kind", kind), ("name", name)):
        if expected is not None and manifest.get(field) != expected:
            raise StateError(f"{root}: saved state is {manifest.get('kind')} "
                             f"{manifest.get('name')!r}, expected {field} {expected!r}")
    arrays: dict[str, np.ndarray] = {}
    files: dict[str, Path] = {}
    for file_name, entry in manifest["files"].items():
        file = root / file_name
        size = regular_file(file).st_size
        if size != entry["bytes"]:
            raise StateError(f"{file}: size {size} bytes, manifest says {entry['bytes']} (truncated or edited)")
        if verify and sha256_file(file) != entry["sha256"]:
            raise StateError(f"{file}: checksum mismatch (corrupted or edited)")
        if file_name.endswith(".npy"):
            arrays[file_name[:-4]] = read_npy(file, mmap=mmap)
        else:
            files[file_name] = file
    for part, entry in manifest.get("parts", {}).items():
        part_manifest = root / part / MANIFEST
        if not part_manifest.is_file():
            raise StateError(f"{root / part}: part of the saved state is missing")
        if verify and sha256_file(part_manifest) != entry["manifest_sha256"]:
            raise StateError(f"{part_manifest}: not the part saved with {root} (checksum mismatch)")
    return SavedState(root, manifest, arrays, files)


@attrs.frozen(eq=False)
class SavedState:
    """A loaded, verified state directory, with helpers that check what a loader reads and raise
    :class:`StateError` naming the file (``vectors.npy``) or field (``meta.dim``) at fault."""

    path: Path
    manifest: dict[str, Any]
    arrays: dict[str, np.ndarray]
    files: dict[str, Path]

    @property
    def config(self) -> dict[str, Any]:
        return self.manifest.get("config", {})

    @property
    def meta(self) -> dict[str, Any]:
        return self.manifest.get("meta", {})

    def error(self, message: str) -> StateError:
        """A :class:`StateError` about this state."""
        return StateError(f"{self.path}: {message}")

    def build(self, cls: type, **extra: Any) -> Any:
        """``cls`` built from the saved config (``extra`` overrides entries); an invalid config
        is a :class:`StateError`."""
        try:
            return cls(make_config(cls.Config, {**self.config, **extra}, cls.name))
        except ConfigError as error:
            raise self.error(f"saved config is invalid: {error}") from None

    def array(self, name: str, *, dtype: Any = None, kinds: str | None = None, ndim: int | None = None,
              shape: Sequence[int | None] | None = None, finite: bool = False) -> np.ndarray:
        """The array ``name`` checked by :func:`embedlab.state_checks.check_array`."""
        if name not in self.arrays:
            raise self.error(f"{name}.npy is missing from the saved state")
        return check_array(self.arrays[name], str(self.path / f"{name}.npy"), dtype=dtype,
                           kinds=kinds or ARRAY_KINDS, ndim=ndim, shape=shape, finite=finite)

    def optional_array(self, name: str, **checks: Any) -> np.ndarray | None:
        """Like :meth:`array`, ``None`` when the state has no such array."""
        return self.array(name, **checks) if name in self.arrays else None

    def indices(self, name: str, upper: int, **checks: Any) -> np.ndarray:
        """Integer array ``name`` whose values all lie in ``[0, upper)``."""
        array = self.array(name, kinds="iu", **checks)
        return check_range(array, upper, str(self.path / f"{name}.npy"))

    def offsets(self, name: str, count: int | None, total: int, *, strict: bool = False) -> np.ndarray:
        """Pointer array ``name`` (see :func:`embedlab.state_checks.check_offsets`)."""
        return check_offsets(self.array(name), count, total, str(self.path / f"{name}.npy"), strict=strict)

    def value(self, key: str, expected: type | tuple[type, ...], *, default: Any = _MISSING,
              minimum: float | None = None, maximum: float | None = None, finite: bool = True) -> Any:
        """``meta[key]`` of the ``expected`` type and range (finite unless ``finite=False``);
        ``default`` when absent (if given)."""
        if key not in self.meta:
            if default is _MISSING:
                raise self.error(f"manifest meta lacks {key!r}")
            return default
        return check_field(self.meta[key], f"{self.path / MANIFEST}: meta.{key}", expected,
                           minimum=minimum, maximum=maximum, finite=finite)

    def numbers(self, key: str, *, default: Any = _MISSING) -> list[float]:
        """``meta[key]`` as a list of finite numbers (training histories and the like)."""
        return self._numbers(self.value(key, list, default=[] if default is _MISSING else default), key)

    def series(self, key: str) -> dict[str, list[float]]:
        """``meta[key]`` as named lists of finite numbers (a training history); ``{}`` when absent."""
        values = self.value(key, dict, default={})
        return {str(name): self._numbers(values[name], f"{key}.{name}") for name in values}

    def _numbers(self, values: Any, where: str) -> list[float]:
        check_field(values, f"{self.path / MANIFEST}: meta.{where}", list)
        for i, item in enumerate(values):
            check_field(item, f"{self.path / MANIFEST}: meta.{where}[{i}]", (int, float), finite=False)
        return [float(v) for v in values]

    def part(self, name: str, *, kind: str | None = None, cls: type | None = None, **load: Any) -> Any:
        """The component saved in the part directory ``name``: loaded with ``cls.load(path,
        **load)`` when given, else through the registry; it must be of ``kind``."""
        directory = self.path / name
        if not (directory / MANIFEST).is_file():
            raise self.error(f"the part {name}/ is missing from the saved state")
        if cls is not None:
            component = cls.load(directory, **load)
        else:
            from embedlab import load_component

            component = load_component(directory)
        if kind is not None and getattr(component, "kind", None) != kind:
            raise self.error(f"the part {name}/ is a {getattr(component, 'kind', '?')}, expected {kind}")
        return component


def guarded_load(path: str | Path, loader: Any) -> Any:
    """``loader(path)``; an :class:`EmbedlabError` that is not a :class:`StateError` (an invalid
    saved config, an unknown component) becomes a :class:`StateError` naming ``path``."""
    try:
        return loader(path)
    except StateError:
        raise
    except EmbedlabError as error:
        raise StateError(f"{path}: {error}") from error

