"""Importing a user's Python file or module: the one way user tasks and reward functions load,
and the digest of their source that keys every stage built from them."""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import site
import sys
from pathlib import Path
from types import ModuleType

from rewardlab.errors import RewardLabError

# name -> the user's source files that importing it loaded (the file or module itself, and the
# user's own modules it imported in turn), so that an edit of any of them is a new key
_SOURCES: dict[str, list[Path]] = {}
_NOT_USER = tuple(
    str(Path(p).resolve())
    for p in {
        sys.prefix,
        sys.base_prefix,
        sys.exec_prefix,
        *site.getsitepackages(),
        Path(__file__).resolve().parent,
    }  # fmt: skip
)


def import_user(name: str, what: str, module_hint: str = "") -> ModuleType:
    """Import `name`, a ``.py`` file or an importable module name, for a `what` ("task",
    "reward function"); each failure is a `RewardLabError` naming it. `module_hint` is put
    before the message of a module name that does not import."""
    before = set(sys.modules)
    module = _import(name, what, module_hint)
    parents = (
        []
        if name.endswith(".py")
        else [".".join(name.split(".")[:i]) for i in range(1, name.count(".") + 1)]
    )
    loaded = [
        sys.modules[m] for m in (set(sys.modules) - before) | set(parents) if m in sys.modules
    ]
    _SOURCES[name] = sorted(
        set(_own_files(name, module)) | {f for m in loaded for f in _own_files(None, m)}
    )
    return module


def source_digest(name: str) -> str:
    """SHA-256 over the content of the user's sources behind `name` (a ``.py`` file or a module
    name): the files that importing it loaded, or, before it is imported, the file or the module's
    files (a package's every ``.py``). Names of files do not enter it, contents do; a file that
    cannot be read counts as "missing"."""
    files = _SOURCES.get(name)
    if files is None:
        files = _own_files(name, None)
    parts = sorted(_content_sha(f) for f in files) or ["missing"]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def file_sha256(path: str | Path) -> str:
    """SHA-256 of a data file the user names (a preference file); "missing" if unreadable."""
    return _content_sha(Path(path))


# (folder, its files' sizes and mtimes) -> digest: a folder is hashed once per process per state
_FOLDERS: dict[tuple, str] = {}


def folder_sha256(path: str | Path) -> str:
    """SHA-256 over a local model folder's files: each file's path relative to the folder and the
    SHA-256 of its content, sorted by path, so a model retrained in place under the same path is a
    new key. "missing" if the folder cannot be read."""
    root = Path(path)
    if not root.is_dir():
        return "missing"
    try:
        files = sorted(f for f in root.rglob("*") if f.is_file())
        state = (str(root.resolve()), *((str(f), *_stamp(f)) for f in files))
    except OSError:
        return "missing"
    if state not in _FOLDERS:
        rows = [f"{f.relative_to(root).as_posix()} {_content_sha(f)}" for f in files]
        _FOLDERS[state] = hashlib.sha256("\n".join(rows).encode()).hexdigest()
    return _FOLDERS[state]


def _stamp(path: Path) -> tuple[int, int]:
    st = path.stat()
    return st.st_size, st.st_mtime_ns


def _content_sha(path: Path) -> str:
    try:
        with path.open("rb") as f:  # streamed: model weights can be gigabytes
            return hashlib.file_digest(f, "sha256").hexdigest()
    except OSError:
        return "missing"


def _own_files(name: str | None, module: ModuleType | None) -> list[Path]:
    """The user's source files of `module` (or, when None, of the file or module `name`): a
    file, or every ``.py`` of a package's folders; none for the standard library, installed
    packages or the lab itself."""
    if module is None:
        if name.endswith(".py"):
            return [Path(name).resolve()]
        try:
            spec = importlib.util.find_spec(name)
        except (ImportError, ValueError):
            return []
        if spec is None:
            return []
        origin, dirs = spec.origin, spec.submodule_search_locations
    else:
        origin, dirs = getattr(module, "__file__", None), getattr(module, "__path__", None)
    if dirs:
        files = [f.resolve() for d in dirs for f in Path(d).rglob("*.py")]
    elif origin and origin.endswith(".py"):
        files = [Path(origin).resolve()]
    else:
        return []
    return [f for f in files if not str(f).startswith(_NOT_USER)]


def _import(name: str, what: str, module_hint: str) -> ModuleType:
    if name.endswith(".py"):
        path = Path(name)
        if not path.is_file():
            raise RewardLabError(f"{what} file {name!r} does not exist")
        tag = what.replace(" ", "_")
        spec = importlib.util.spec_from_file_location(f"rewardlab_user_{tag}_{path.stem}", path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module
        try:
            spec.loader.exec_module(module)
        except Exception as exc:
            raise RewardLabError(
                f"{what} file {name!r} failed to import: {type(exc).__name__}: {exc}"
            ) from None
        return module
    try:
        return importlib.import_module(name)
    except Exception as exc:
        raise RewardLabError(
            f"{what} {name!r}{module_hint}: importing it as a module failed: "
            f"{type(exc).__name__}: {exc}"
        ) from None
