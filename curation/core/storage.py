"""Artifacts through one storage, `storages["artifacts"]` (config/settings.py): the uploads kept
for their imports, and each training run's frozen data, checkpoints, trained model and logs, so
that a worker on another machine reads and writes them where every machine can.

Every machine works on local copies in two folders: settings.UPLOAD_DIR holds the storage's
names under "uploads/", settings.ARTIFACT_DIR every other name. With the default storage (a
FileSystemStorage) those folders are the storage itself: nothing is ever copied, and a row keeps
a file's absolute path, as rows always have. With object storage (S3-compatible), `publish`
uploads a local file or folder and a row keeps its storage name; `fetch` gives a local copy of
one, downloading only the files this machine does not have yet.

What a row keeps, a "reference", is therefore an absolute local path or a storage name, and
every function here takes either: rows written before object storage keep working.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath
from typing import IO

from django.conf import settings
from django.core.files import File
from django.core.files.storage import FileSystemStorage, Storage, storages

UPLOADS = "uploads/"
COPY_CHUNK = 1024 * 1024

# Storage name -> (size, modification time) of the local file last published or fetched under
# it: what a later `publish` need not send again.
Manifest = dict[str, tuple[int, int]]


class ArtifactMissing(FileNotFoundError):
    """A reference whose file or folder is neither on this machine nor in the storage."""

    def __init__(self, ref: str) -> None:
        super().__init__(f"{ref} is neither on this machine nor in the artifacts storage.")
        self.ref = ref


def artifact_storage() -> Storage:
    return storages["artifacts"]


def is_remote() -> bool:
    """Whether the artifacts live in a storage of their own (object storage) rather than in this
    machine's folders (any FileSystemStorage is taken to be the artifacts folder itself)."""
    return not isinstance(artifact_storage(), FileSystemStorage)


def _roots() -> tuple[tuple[str, Path], ...]:
    return ((UPLOADS, Path(settings.UPLOAD_DIR)), ("", Path(settings.ARTIFACT_DIR)))


def _is_name(ref: str) -> bool:
    return not Path(ref).is_absolute()


def _clean(name: str) -> str:
    """A storage name as given, refused when it could leave its folder."""
    parts = PurePosixPath(name).parts
    if not parts or any(part in ("..", "") for part in parts) or PurePosixPath(name).is_absolute():
        raise ValueError(f"{name!r} is not a storage name of an artifact.")
    return "/".join(parts)


def name_of(path: Path) -> str | None:
    """The storage name of local `path` in the upload or artifacts folder; None outside them."""
    resolved = Path(path).resolve()
    for prefix, root in _roots():
        root = root.resolve()
        if resolved != root and resolved.is_relative_to(root):
            return prefix + resolved.relative_to(root).as_posix()
    return None


def local_path(ref: str) -> Path:
    """Where this machine keeps reference `ref`: an absolute path is itself, a name is in its folder."""
    if not _is_name(ref):
        return Path(ref)
    name = _clean(ref)
    for prefix, root in _roots():
        if name.startswith(prefix):
            return root / name[len(prefix) :]
    raise AssertionError("the artifacts folder takes every name")  # pragma: no cover


def reference(path: Path) -> str:
    """What a row keeps for local `path`: with object storage its storage name (when it is in the
    upload or artifacts folder), else the path itself."""
    if is_remote() and (name := name_of(path)) is not None:
        return name
    return str(path)


def _files(folder: Path) -> Iterator[Path]:
    """The files under `folder`, but none under a hidden name (a checkpoint being written, a
    download in progress)."""
    for path in sorted(folder.rglob("*")):
        if path.is_file() and not any(part.startswith(".") for part in path.relative_to(folder).parts):
            yield path


def _save(storage: Storage, name: str, handle: IO[bytes]) -> None:
    if not getattr(storage, "file_overwrite", False) and storage.exists(name):
        storage.delete(name)
    saved = storage.save(name, File(handle, name=PurePosixPath(name).name))
    if saved != name:
        raise RuntimeError(f"The artifacts storage saved {name} as {saved}; it must overwrite files.")


def publish(path: Path, *, known: Manifest | None = None, last: Collection[str] = ()) -> str:
    """Copy local file or folder `path` into the storage, and return its reference. Files that
    `known` has seen unchanged are not sent again; files named in `last` go after the others (a
    folder whose such file is stored is complete). Nothing is copied with the local storage."""
    path = Path(path)
    if not is_remote():
        return str(path)
    name = name_of(path)
    if name is None:
        raise ValueError(f"{path} is outside the artifacts and upload folders; it cannot be published.")
    if not path.exists():
        raise ArtifactMissing(str(path))
    storage = artifact_storage()
    files = [path] if path.is_file() else sorted(_files(path), key=lambda file: file.name in last)
    for file in files:
        file_name = name if file == path else f"{name}/{file.relative_to(path).as_posix()}"
        stat = file.stat()
        mark = (stat.st_size, stat.st_mtime_ns)
        if known is not None and known.get(file_name) == mark:
            continue
        with file.open("rb") as handle:
            _save(storage, file_name, handle)
        if known is not None:
            known[file_name] = mark
    return name


def _stored(storage: Storage, name: str, *, recursive: bool = True) -> list[str]:
    """The stored files of `name`: itself when it is a file, else those under it."""
    if storage.exists(name):
        return [name]
    return _stored_under(storage, name, recursive)


def _stored_under(storage: Storage, name: str, recursive: bool) -> list[str]:
    folders, files = storage.listdir(name)
    found = [f"{name}/{file}" for file in files]
    if recursive:
        for folder in folders:
            found += _stored_under(storage, f"{name}/{folder}", recursive)
    return found


def _download(storage: Storage, name: str, target: Path) -> None:
    """One stored file to `target`, through a hidden temporary file (a download cut short leaves
    nothing that looks complete)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.{os.getpid()}.part")
    try:
        with storage.open(name, "rb") as source, partial.open("wb") as out:
            shutil.copyfileobj(source, out, COPY_CHUNK)
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)


def fetch(ref: str, *, known: Manifest | None = None, recursive: bool = True) -> Path:
    """A local copy of reference `ref` (a file or a folder; with `recursive=False`, a folder's own
    files only), downloading only what this machine lacks; ArtifactMissing when it is nowhere."""
    path = local_path(ref)
    if not _is_name(ref) or not is_remote():
        if not path.exists():
            raise ArtifactMissing(ref)
        return path
    if path.is_file():
        return path
    storage = artifact_storage()
    name = _clean(ref)
    stored = _stored(storage, name, recursive=recursive)
    if not stored:
        raise ArtifactMissing(ref)
    for file_name in stored:
        target = path if file_name == name else path / file_name[len(name) + 1 :]
        if not target.is_file():
            _download(storage, file_name, target)
        if known is not None:
            stat = target.stat()
            known[file_name] = (stat.st_size, stat.st_mtime_ns)
    return path


def exists(ref: str) -> bool:
    """Whether reference `ref` (a file or a folder) is here, or stored."""
    if not _is_name(ref) or not is_remote():
        return local_path(ref).exists()
    storage = artifact_storage()
    name = _clean(ref)
    if storage.exists(name):
        return True
    folders, files = storage.listdir(name)
    return bool(folders or files)


def subfolders(ref: str) -> list[str]:
    """The names of the folders directly in folder `ref`, as stored."""
    if not _is_name(ref) or not is_remote():
        path = local_path(ref)
        return sorted(p.name for p in path.iterdir() if p.is_dir()) if path.is_dir() else []
    return sorted(artifact_storage().listdir(_clean(ref))[0])


def remove(ref: str) -> None:
    """Delete reference `ref` (a file or a folder) here and in the storage. Only what is in the
    upload or artifacts folder: anything else is not the app's to delete."""
    path = local_path(ref)
    if name_of(path) is None:
        return
    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)
    if _is_name(ref) and is_remote():
        storage = artifact_storage()
        for file_name in _stored(storage, _clean(ref)):
            storage.delete(file_name)


@contextmanager
def working_copy(ref: str) -> Iterator[Path]:
    """A local copy of reference `ref` while the block runs; with object storage, the copy is
    deleted after it (the storage keeps the file)."""
    path = fetch(ref)
    try:
        yield path
    finally:
        if _is_name(ref) and is_remote():
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
