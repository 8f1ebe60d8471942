"""Saved state: a directory with ``manifest.json`` and ``.npy``/raw files, checksummed, written
atomically (temp directory + rename). Never pickle.

Manifest fields: ``format_version``, ``kind``, ``name``, ``config``, ``distribution``, ``version``,
``meta`` (free JSON), and ``files`` mapping each file name to its sha256 and size.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
from pathlib import Path
from typing import Any, Mapping

import attrs
import numpy as np

from embedlab.components import describe
from embedlab.errors import StateError

FORMAT_VERSION = 1
MANIFEST = "manifest.json"


@attrs.frozen(eq=False)
class SavedState:
    """A loaded, verified state directory."""

    path: Path
    manifest: dict[str, Any]
    arrays: dict[str, np.ndarray]
    files: dict[str, Path]

    @property
    def config(self) -> dict[str, Any]:
        return self.manifest["config"]

    @property
    def meta(self) -> dict[str, Any]:
        return self.manifest.get("meta", {})


def sha256_file(path: str | Path) -> str:
    """Hex sha256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _check_name(name: str) -> None:
    if not name or "/" in name or "\\" in name or name.startswith(".") or name == MANIFEST:
        raise StateError(f"invalid state file name {name!r}")


def save_state(path: str | Path, component: Any, arrays: Mapping[str, np.ndarray] | None = None,
               files: Mapping[str, bytes] | None = None, meta: Mapping[str, Any] | None = None,
               *, identity: Mapping[str, Any] | None = None) -> Path:
    """Write ``component``'s state to the directory ``path`` atomically.

    ``arrays`` become ``<name>.npy``; ``files`` are raw bytes (for example a FAISS index
    serialised by FAISS itself). ``identity`` overrides :func:`embedlab.components.describe`.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.parent / f".{target.name}.tmp-{uuid.uuid4().hex}"
    tmp.mkdir()
    try:
        entries: dict[str, dict[str, Any]] = {}
        for name, array in (arrays or {}).items():
            _check_name(name)
            array = np.asarray(array)
            if array.dtype == object:
                raise StateError(f"array {name!r} has dtype object, which would need pickle")
            file = tmp / f"{name}.npy"
            np.save(file, array, allow_pickle=False)
            entries[file.name] = {"sha256": sha256_file(file), "bytes": file.stat().st_size}
        for name, payload in (files or {}).items():
            _check_name(name)
            file = tmp / name
            file.write_bytes(payload)
            entries[name] = {"sha256": sha256_file(file), "bytes": file.stat().st_size}
        manifest = {"format_version": FORMAT_VERSION, **(identity or describe(component)),
                    "meta": dict(meta or {}), "files": entries}
        with open(tmp / MANIFEST, "w", encoding="utf-8") as handle:
            json.dump(manifest, handle, indent=2, sort_keys=True, default=str)
            handle.flush()
            os.fsync(handle.fileno())
        _replace_dir(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target


def _replace_dir(tmp: Path, target: Path) -> None:
    if not target.exists():
        os.replace(tmp, target)
        return
    if not (target / MANIFEST).is_file() and any(target.iterdir()):
        raise StateError(f"refusing to overwrite {target}: it exists and is not an embedlab state "
                         "directory")
    old = target.parent / f".{target.name}.old-{uuid.uuid4().hex}"
    os.replace(target, old)
    os.replace(tmp, target)
    shutil.rmtree(old, ignore_errors=True)


def read_manifest(path: str | Path) -> dict[str, Any]:
    """Parse ``manifest.json`` of a state directory, with a clear error when absent or invalid."""
    file = Path(path) / MANIFEST
    if not file.is_file():
        raise StateError(f"{path}: not an embedlab state directory (no {MANIFEST})")
    try:
        manifest = json.loads(file.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise StateError(f"{file}: corrupted manifest ({error})") from None
    if not isinstance(manifest, dict) or "files" not in manifest or "kind" not in manifest:
        raise StateError(f"{file}: not an embedlab manifest")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise StateError(f"{file}: format version {manifest.get('format_version')!r} is not "
                         f"supported (this embedlab reads {FORMAT_VERSION})")
    return manifest


def load_state(path: str | Path, *, kind: str | None = None, name: str | None = None,
               mmap: bool = False, verify: bool = True) -> SavedState:
    """Load and verify a state directory written by :func:`save_state`.

    Raises :class:`StateError` naming the bad file when a file is missing, truncated or edited
    (sha256 mismatch), or when the state belongs to another kind or name of component.
    ``mmap=True`` memory-maps the arrays instead of reading them.
    """
    root = Path(path)
    manifest = read_manifest(root)
    for field, expected in (("kind", kind), ("name", name)):
        if expected is not None and manifest.get(field) != expected:
            raise StateError(f"{root}: saved state is {manifest.get('kind')} "
                             f"{manifest.get('name')!r}, expected {field} {expected!r}")
    arrays: dict[str, np.ndarray] = {}
    files: dict[str, Path] = {}
    for file_name, entry in manifest["files"].items():
        _check_name(file_name)
        file = root / file_name
        if not file.is_file():
            raise StateError(f"{file}: missing from saved state")
        if file.stat().st_size != entry.get("bytes"):
            raise StateError(f"{file}: size {file.stat().st_size} bytes, manifest says "
                             f"{entry.get('bytes')} (truncated or edited)")
        if verify and sha256_file(file) != entry.get("sha256"):
            raise StateError(f"{file}: checksum mismatch (corrupted or edited)")
        if file_name.endswith(".npy"):
            try:
                arrays[file_name[:-4]] = np.load(file, allow_pickle=False,
                                                 mmap_mode="r" if mmap else None)
            except ValueError as error:
                raise StateError(f"{file}: unreadable array ({error})") from None
        else:
            files[file_name] = file
    return SavedState(root, manifest, arrays, files)
