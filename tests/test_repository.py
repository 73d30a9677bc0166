"""Text in the repository is about the product as it is, for readers who have only the repository: no
absolute paths of the machine a file was written on, no internal issue numbers, no account of who
worked on it when.

Each pattern below is spelled so that it does not match its own source line.
"""

import re
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

FORBIDDEN = re.compile(
    "|".join(
        [
            r"/wor[k]/",  # a path of the development machine
            r"/roo[t]/",  # a home directory (an interpreter under ~/.pyenv, say)
            r"/tm[p]/[a-z_]+/",  # a scratch directory
            r"[Ii]ssu[e] [0-9]+",  # an internal issue number
            r"sessio[n]",  # a sitting of development work
        ]
    )
)
# Legitimate uses, as words on the same line (wherever the file moves): the language server's own word, and
# pytest's (the hook that ends a run, which pytest calls with an argument of that name, and what the probe's
# plugin reads of it).
ALLOWED = (
    "how the session is set up",
    "the editing session",
    "def pytest_sessionfinish(session",
    "session.config",
    "session.exitstatus",
)


def repository_files():
    """What a fresh clone holds, plus the files git would add: tracked, and untracked but not ignored."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    if listed.returncode != 0:
        pytest.skip("not a git checkout")
    return sorted(name for name in set(listed.stdout.split("\0")) if name and (REPO / name).is_file())


def test_no_machine_paths_or_internal_references():
    hits = []
    for name in repository_files():
        path = REPO / name
        if path.is_symlink():
            continue  # its target is checked where it lives
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue  # binary (an image)
        for number, line in enumerate(text.splitlines(), 1):
            if FORBIDDEN.search(line) and not any(words in line for words in ALLOWED):
                hits.append(f"{name}:{number}: {line.strip()[:100]}")
    assert not hits, "text that only made sense while writing it:\n" + "\n".join(hits)
