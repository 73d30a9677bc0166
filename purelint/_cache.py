"""A per-file result cache, so that a run over an unchanged tree parses nothing.

An entry is keyed on the file's path and content, the configuration, and purelint itself (its version
and the size and modification time of its own source files, so an edited rule never serves stale
results). Entries are small JSON files under `.purelint_cache/`, written atomically, so parallel
workers and concurrent runs can share the directory safely; a torn or foreign entry is a miss.

Example:
    >>> import tempfile
    >>> cache = Cache(tempfile.mkdtemp(), fingerprint("select=ALL"))
    >>> key = cache.key("m.py", b"x = 1\\n")
    >>> cache.get(key) is None
    True
    >>> cache.put(key, [{"code": "PUR001"}]); cache.get(key)
    [{'code': 'PUR001'}]
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import pathlib

from purelint._source import write_atomic

CACHE_DIR = ".purelint_cache"
_FORMAT = "1"  # bump when the entry layout changes


def fingerprint(config: object) -> str:
    """A digest of the configuration and of purelint's own code; equal digests give equal results."""
    from purelint import __version__  # read when called: the package defines it after its imports

    digest = hashlib.blake2b(digest_size=8)
    digest.update(f"{_FORMAT}\0{__version__}\0".encode())
    package = pathlib.Path(__file__).parent
    for path in sorted(package.rglob("*.py")):
        stat = path.stat()
        digest.update(f"{path.relative_to(package)}\0{stat.st_size}\0{stat.st_mtime_ns}\0".encode())
    digest.update(_config_text(config).encode())
    return digest.hexdigest()


def _config_text(config: object) -> str:
    if dataclasses.is_dataclass(config) and not isinstance(config, type):
        config = dataclasses.asdict(config)
    return json.dumps(config, sort_keys=True, default=repr)


@dataclasses.dataclass(frozen=True)
class Cache:
    """Entries for one fingerprint live in `<root>/.purelint_cache/<fingerprint>/`."""

    root: str
    fingerprint: str

    @property
    def directory(self) -> str:
        return os.path.join(self.root, CACHE_DIR, self.fingerprint)

    def key(self, path: str, data: bytes) -> str:
        digest = hashlib.blake2b(data, digest_size=16)
        digest.update(b"\0" + os.fsencode(path))
        return digest.hexdigest()

    def get(self, key: str) -> list | None:
        try:
            with open(os.path.join(self.directory, key + ".json"), "rb") as handle:
                entry = json.loads(handle.read())
        except (OSError, ValueError):
            return None
        if not isinstance(entry, dict) or entry.get("key") != key or not isinstance(entry.get("results"), list):
            return None
        return entry["results"]

    def put(self, key: str, results: list) -> None:
        """Store results; a cache that cannot be written only costs speed, never the run."""
        try:
            self._prepare()
            data = json.dumps({"key": key, "results": results}, separators=(",", ":")).encode()
            write_atomic(os.path.join(self.directory, key + ".json"), data)
        except (OSError, TypeError, ValueError):
            pass

    def _prepare(self) -> None:
        if os.path.isdir(self.directory):
            return
        os.makedirs(self.directory, exist_ok=True)
        top = os.path.join(self.root, CACHE_DIR)
        marker = os.path.join(top, ".gitignore")
        if not os.path.exists(marker):
            write_atomic(marker, b"# Created by purelint; safe to delete.\n*\n")
        tag = os.path.join(top, "CACHEDIR.TAG")
        if not os.path.exists(tag):
            write_atomic(tag, b"Signature: 8a477f597d28d172789f06886806bc55\n# purelint result cache\n")
