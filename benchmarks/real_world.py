"""purelint's precision on third-party JAX code: every finding compared with a hand-written label.

    .venv/bin/python benchmarks/real_world.py CHECKOUT...                # precision tables
    .venv/bin/python benchmarks/real_world.py CHECKOUT... --fix-check    # and what --fix would do
    .venv/bin/python benchmarks/real_world.py --extract CLONE CHECKOUT   # make a checkout from a clone

Each CHECKOUT is a directory holding one project's files; its name is the project's name in the
labels file, and its commit is read from a `COMMIT` file or `.git`. `--extract` makes one from a git
clone (bare or not) of a project in CORPORA: the pinned commit's .py and .ipynb files under the
listed directories, jupytext .py twins of notebooks dropped, MyST markdown notebooks (`{code-cell}`)
converted to .ipynb so their code is linted too (docs/purelint-real-world.md has the commands). purelint runs over it twice, in the default configuration
and with `--select ALL --scope all`, through the library API. Every finding is matched to a row of
benchmarks/real_world_labels.csv (project, commit, path, cell, line, code, verdict, text, reason):
first by the stripped source line (`text`) at the nearest line, so labels survive line drift, then
by the exact line when the text changed. The tables give, per rule, findings / true / debatable /
false / unlabelled and precision = true / labelled (debatable counted apart, not as true); the
unlabelled findings are listed with a ready-made CSV row to label.

With `--fix-check`, each checkout is copied to a temporary directory where `purelint --fix` (safe
fixes only, the command-line tool) runs once per configuration; the report gives the fixes applied
per rule, whether every changed file still compiles (each code cell for notebooks; cells that did
not compile before, IPython syntax, are not held against the fix), and prints the diffs for review.
A benchmark, not a test: CI has no checkouts.
"""

from __future__ import annotations

import argparse
import csv
import difflib
import io
import json
import re
import shutil
import subprocess
import sys
import tempfile
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path

from purelint import Config, Diagnostic, iter_files, lint_file

LABELS = Path(__file__).with_name("real_world_labels.csv")
FIELDS = ("project", "commit", "path", "cell", "line", "code", "verdict", "text", "reason")
VERDICTS = ("true", "debatable", "false")
# project -> (pinned commit, directories linted)
CORPORA = {
    "flax": ("18f8f311c275d57f46d95e41b15aa97b454754c0", ("examples", "docs_nnx")),
    "equinox": ("9336d820b2ef66b360fc6cb3611b3da5cefbb14d", ("examples", "docs/examples")),
    "optax": ("2edbcbe2390da13983b92cbef94ac0460ecde1c5", ("optax",)),
    "haiku": ("f4d858a5cbb29140855d68f81f5fd625e078a5ae", ("examples",)),
    "jax": ("cec06d116c05f0d52adfceee3d3b730fdbcb0ce5", ("docs",)),
}
MODES = {
    "default": ((), {}),
    "ALL/all": (("--select", "ALL", "--scope", "all"), {"select": ("ALL",), "scope": "all"}),
}


@dataclass(frozen=True)
class Label:
    project: str
    commit: str
    path: str
    cell: str  # notebook cell number, "" for plain files
    line: int
    code: str
    verdict: str
    text: str
    reason: str


@dataclass(frozen=True)
class Finding:
    project: str
    path: str  # relative to the checkout, POSIX-style
    cell: str
    line: int
    code: str
    text: str
    message: str
    scope: str = "traced"  # "untraced" findings appear only with `--scope all`
    safe_fix: bool = False  # carries a fix that `purelint --fix` applies


# --- inputs ---------------------------------------------------------------------------------------


def read_labels(path: Path) -> list[Label]:
    """The labels file; a malformed row stops the run with a one-line error naming it."""
    if not path.exists():
        return []
    labels = []
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        if tuple(reader.fieldnames or ()) != FIELDS:
            sys.exit(f"error: {path.name}: the header must be {','.join(FIELDS)}")
        for number, row in enumerate(reader, start=2):
            if row.get("verdict") not in VERDICTS or not (row.get("line") or "").isdigit():
                sys.exit(f"error: {path.name}:{number}: needs a verdict in {VERDICTS} and a line number")
            labels.append(Label(**{**row, "line": int(row["line"])}))
    return labels


def commit_of(checkout: Path) -> str:
    """The checkout's commit: `git rev-parse HEAD` in a git work tree, else its COMMIT file."""
    stamp = checkout / "COMMIT"
    if stamp.exists():
        return stamp.read_text(encoding="utf-8").strip()
    result = subprocess.run(["git", "-C", str(checkout), "rev-parse", "HEAD"], capture_output=True, text=True)
    return result.stdout.strip() if result.returncode == 0 else "unknown"


def notebook_cells(text: str) -> list[tuple[str, str]]:
    """(cell type, source) of every cell, markdown included so numbers match purelint's cells."""
    try:
        cells = json.loads(text).get("cells", [])
    except ValueError:
        return []
    return [(c.get("cell_type", ""), "".join(c.get("source", ""))) for c in cells]


class Sources:
    """Source lines by (file, cell), read once, so a finding can be matched by its line's text."""

    def __init__(self) -> None:
        self._lines: dict[tuple[Path, int | None], list[str]] = {}

    def line(self, path: Path, cell: int | None, line: int) -> str:
        key = (path, cell)
        if key not in self._lines:
            if cell is None:
                text = path.read_text(encoding="utf-8", errors="replace")
            else:
                cells = notebook_cells(path.read_text(encoding="utf-8", errors="replace"))
                text = cells[cell - 1][1] if 0 < cell <= len(cells) else ""
            self._lines[key] = text.splitlines()
        lines = self._lines[key]
        return lines[line - 1].strip() if 0 < line <= len(lines) else ""


def lint_checkout(checkout: Path, overrides: dict, sources: Sources) -> list[Finding]:
    """Every finding in the checkout, in the project named after it; a file on which purelint
    crashes gives one CRASH finding, so one bug does not hide the rest of the corpus."""
    config = Config(root=checkout, respect_gitignore=False, **overrides)
    project = checkout.name
    findings = []
    for path in iter_files([checkout], config):
        relative = path.relative_to(checkout).as_posix()
        try:
            found = lint_file(path, config=config)
        except Exception as error:  # what a benchmark of a moving engine must survive and show
            findings.append(Finding(project, relative, "", 1, "CRASH", "", f"{type(error).__name__}: {error}"))
            continue
        findings += [
            Finding(
                project,
                relative,
                "" if d.cell is None else str(d.cell),
                d.line,
                d.code,
                sources.line(path, d.cell, d.line),
                d.message,
                d.scope,
                _safe(d),
            )
            for d in found
        ]
    return findings


# --- matching -------------------------------------------------------------------------------------


class Matcher:
    """Finds the label of a finding: same project, path and code, then the same line text at the
    nearest line (in the same cell first), else the same cell and line."""

    def __init__(self, labels: list[Label]) -> None:
        self._by_file: dict[tuple[str, str, str], list[Label]] = defaultdict(list)
        for label in labels:
            self._by_file[label.project, label.path, label.code].append(label)
        self.used: set[Label] = set()

    def match(self, finding: Finding) -> Label | None:
        candidates = self._by_file.get((finding.project, finding.path, finding.code), [])
        same_text = [c for c in candidates if c.text == finding.text]
        if same_text:
            label = min(same_text, key=lambda c: (c.cell != finding.cell, abs(c.line - finding.line)))
        else:
            label = next((c for c in candidates if (c.cell, c.line) == (finding.cell, finding.line)), None)
        if label is not None:
            self.used.add(label)
        return label


# --- reports --------------------------------------------------------------------------------------


def precision_table(
    findings: list[Finding], matcher: Matcher, show: tuple[str, ...] = ()
) -> tuple[list[str], list[Finding]]:
    """Rows of the per-rule table, and the findings with no label; findings whose verdict is in
    `show` are printed with their label's reason."""
    counts: dict[str, Counter[str]] = defaultdict(Counter)
    unlabelled = []
    for finding in findings:
        label = matcher.match(finding)
        if label is not None and label.verdict in show:
            cell = f"cell {finding.cell}:" if finding.cell else ""
            print(
                f"  [{label.verdict}] {finding.code} {finding.project}/{finding.path}:{cell}{finding.line}  "
                f"{finding.text[:70]}  -- {label.reason}"
            )
        counts[finding.code]["findings"] += 1
        counts[finding.code]["untraced"] += finding.scope == "untraced"
        counts[finding.code][label.verdict if label else "unlabelled"] += 1
        if label is None:
            unlabelled.append(finding)
    total: Counter[str] = sum(counts.values(), Counter())
    rows = [
        f"{'rule':<8} {'findings':>8} {'untraced':>8} {'true':>5} {'debatable':>9} {'false':>5} {'unlabelled':>10} {'precision':>9}"
    ]
    for code, c in [*sorted(counts.items()), ("total", total)]:
        labelled = c["true"] + c["debatable"] + c["false"]
        precision = f"{c['true'] / labelled:.0%}" if labelled else "-"
        rows.append(
            f"{code:<8} {c['findings']:>8} {c['untraced']:>8} {c['true']:>5} {c['debatable']:>9} {c['false']:>5} "
            f"{c['unlabelled']:>10} {precision:>9}"
        )
    return rows, unlabelled


def label_row(finding: Finding, commits: dict[str, str]) -> str:
    """A CSV row to paste into the labels file once verdict and reason are filled in."""
    row = [
        finding.project,
        commits[finding.project],
        finding.path,
        finding.cell,
        str(finding.line),
        finding.code,
        "?",
        finding.text,
        f"[{finding.scope}] {finding.message}",
    ]
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="").writerow(row)
    return buffer.getvalue()


# --- --fix-check ----------------------------------------------------------------------------------


def compiles(path: Path, text: str) -> list[bool]:
    """Whether the file compiles: one entry for a .py file, one per code cell of a notebook. IPython
    lines (magics, shell escapes) are blanked first, as purelint itself treats them."""
    if path.suffix != ".ipynb":
        return [_compiles(text, str(path))]
    return [_compiles(_without_ipython(source), str(path)) for kind, source in notebook_cells(text) if kind == "code"]


def _without_ipython(source: str) -> str:
    return "\n".join("" if line.lstrip().startswith(("%", "!")) else line for line in source.splitlines())


def _compiles(text: str, filename: str) -> bool:
    try:
        compile(text, filename, "exec", dont_inherit=True)
    except (SyntaxError, ValueError):
        return False
    return True


def fix_check(checkout: Path, flags: tuple[str, ...], overrides: dict, matcher: Matcher, found: list[Finding]) -> None:
    """Copy the checkout, run `purelint --fix` on the copy, report fixes per rule, the safe fixes on
    findings labelled false or debatable (each one a fix no reviewer should accept), compilation,
    and the diffs. `found` are the checkout's findings in this configuration (the copy has the same)."""
    with tempfile.TemporaryDirectory(prefix="purelint-fix-") as tmp:
        copy = Path(tmp) / checkout.name
        shutil.copytree(checkout, copy, ignore=shutil.ignore_patterns(".git"))
        fixable = [f for f in found if f.safe_fix]
        originals = {p: p.read_text(encoding="utf-8", errors="replace") for p in _files(copy)}
        command = [sys.executable, "-m", "purelint", "--fix", "--no-cache", "--exit-zero", *flags, str(copy)]
        result = subprocess.run(command, capture_output=True, text=True, cwd=tmp)
        if result.returncode not in (0, 1):
            print(f"  purelint --fix failed ({result.returncode}): {result.stderr.strip().splitlines()[-1:]}")
            return
        left = Counter(f.code for f in lint_checkout(copy, overrides, Sources()) if f.safe_fix)
        applied = Counter(f.code for f in fixable) - left
        changed = {p: p.read_text(encoding="utf-8", errors="replace") for p in originals}
        changed = {p: text for p, text in changed.items() if text != originals[p]}
        print(
            f"  fixes applied: {sum(applied.values())} "
            f"({', '.join(f'{code} {n}' for code, n in sorted(applied.items())) or 'none'}); files changed: {len(changed)}"
        )
        wrong = [(f, label) for f in fixable if (label := matcher.match(f)) is None or label.verdict != "true"]
        print(f"  safe fixes on findings not labelled true: {len(wrong)}")
        for finding, label in wrong:
            cell = f"cell {finding.cell}:" if finding.cell else ""
            print(
                f"    [{label.verdict if label else 'unlabelled'}] {finding.code} {finding.path}:{cell}{finding.line}  "
                f"{finding.text[:70]}" + (f"  -- {label.reason}" if label else "")
            )
        broken = []
        for path, text in sorted(changed.items()):
            old, new = compiles(path, originals[path]), compiles(path, text)
            if len(old) != len(new) or any(o and not n for o, n in zip(old, new)):
                broken.append(path.relative_to(copy).as_posix())
        print(
            f"  changed files that still compile: {len(changed) - len(broken)}/{len(changed)}"
            + (f"; BROKEN: {', '.join(broken)}" if broken else "")
        )
        for path, text in sorted(changed.items()):
            name = path.relative_to(copy).as_posix()
            old, new = _reviewable(path, originals[path]), _reviewable(path, text)
            sys.stdout.writelines(difflib.unified_diff(old, new, f"a/{name}", f"b/{name}"))


def _files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.suffix in (".py", ".pyi", ".ipynb") and p.is_file())


def _safe(diagnostic: Diagnostic) -> bool:
    return diagnostic.fix is not None and diagnostic.fix.applicability == "safe"


def _reviewable(path: Path, text: str) -> list[str]:
    """Lines to diff: a notebook's code cells as Python (with cell markers), not its JSON."""
    if path.suffix != ".ipynb":
        return text.splitlines(keepends=True)
    lines = []
    for number, (kind, source) in enumerate(notebook_cells(text), start=1):
        if kind == "code":
            lines += [f"# cell {number}\n", *(line + "\n" for line in source.splitlines())]
    return lines


# --- --extract ------------------------------------------------------------------------------------


def _git(clone: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(["git", "-C", str(clone), *args], capture_output=True)


def extract(clone: Path, checkout: Path) -> None:
    """Write the pinned commit's lintable files of `clone` into `checkout` (named after the project)."""
    if checkout.name not in CORPORA:
        sys.exit(f"error: unknown project {checkout.name!r}: name the checkout one of {', '.join(CORPORA)}")
    commit, folders = CORPORA[checkout.name]
    listing = _git(clone, "ls-tree", "-r", commit, "--", *folders)
    if listing.returncode:
        sys.exit(f"error: {clone} has no commit {commit} (fetch it first): {listing.stderr.decode().strip()}")
    blobs = {}
    for line in listing.stdout.decode().splitlines():
        meta, name = line.split("\t", 1)
        if meta.split()[1] == "blob" and name.endswith((".py", ".ipynb", ".md")):
            blobs[name] = meta.split()[2]
    written = missing = 0
    for name, blob in sorted(blobs.items()):
        if name.endswith(".py") and name[:-3] + ".ipynb" in blobs:
            continue  # a jupytext twin: the notebook itself is linted
        if name.endswith(".md") and name[:-3] + ".ipynb" in blobs:
            continue
        data = _git(clone, "cat-file", "blob", blob)
        if data.returncode:  # a blob the (partial) clone lacks
            missing += 1
            continue
        if name.endswith(".md"):
            text = data.stdout.decode("utf-8", errors="replace")
            if "{code-cell}" not in text:
                continue
            name, content = name + ".ipynb", myst_to_notebook(text).encode()
        else:
            content = data.stdout
        target = checkout / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)
        written += 1
    (checkout / "COMMIT").write_text(commit + "\n", encoding="utf-8")
    print(f"{checkout.name} {commit}: {written} files written, {missing} missing from the clone")


def myst_to_notebook(text: str) -> str:
    """A MyST markdown notebook as .ipynb JSON: each {code-cell} block a code cell (its option lines
    dropped), the text between them markdown cells, so cell numbers follow the document."""
    cells, position = [], 0
    for block in re.finditer(r"(?ms)^```\{code-cell\}[^\n]*\n(.*?)^```[ \t]*$", text):
        cells.append({"cell_type": "markdown", "metadata": {}, "source": text[position : block.start()]})
        body = block.group(1).splitlines(keepends=True)
        while body and body[0].startswith(":"):
            body.pop(0)
        if body and body[0].strip() == "---":  # a YAML options block
            end = next((i for i, line in enumerate(body[1:], 1) if line.strip() == "---"), 0)
            body = body[end + 1 :]
        cells.append(
            {"cell_type": "code", "metadata": {}, "execution_count": None, "outputs": [], "source": "".join(body)}
        )
        position = block.end()
    notebook = {"cells": cells, "metadata": {"language_info": {"name": "python"}}, "nbformat": 4, "nbformat_minor": 5}
    return json.dumps(notebook, indent=1)


# --- main -----------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkouts", nargs="+", type=Path, metavar="CHECKOUT")
    parser.add_argument(
        "--extract",
        type=Path,
        metavar="CLONE",
        help="write CHECKOUT (one) from this git clone at the pinned commit, then stop",
    )
    parser.add_argument("--labels", type=Path, default=LABELS, help="labels file (default: %(default)s)")
    parser.add_argument("--mode", choices=tuple(MODES), nargs="+", default=list(MODES))
    parser.add_argument("--fix-check", action="store_true", help="also run --fix on copies and review it")
    parser.add_argument(
        "--show",
        nargs="+",
        choices=VERDICTS,
        default=(),
        metavar="VERDICT",
        help="list the findings labelled with these verdicts, with the label's reason",
    )
    args = parser.parse_args()
    if args.extract:
        if len(args.checkouts) != 1 or not args.extract.is_dir():
            sys.exit("error: --extract CLONE takes an existing clone and exactly one CHECKOUT to write")
        extract(args.extract, args.checkouts[0])
        return
    for checkout in args.checkouts:
        if not checkout.is_dir():
            sys.exit(f"error: checkout {checkout} does not exist (see docs/purelint-real-world.md to fetch it)")
    checkouts = [c.resolve() for c in args.checkouts]
    labels = read_labels(args.labels)
    matcher = Matcher(labels)
    commits = {c.name: commit_of(c) for c in checkouts}
    for project, commit in commits.items():
        pinned = {label.commit for label in labels if label.project == project}
        if pinned and commit not in pinned:
            print(f"warning: {project} is at {commit}, labels are for {', '.join(sorted(pinned))}")
    sources = Sources()
    found: dict[tuple[str, str], list[Finding]] = {}  # (mode, project) -> findings, reused by --fix-check
    for mode in args.mode:
        flags, overrides = MODES[mode]
        for checkout in checkouts:
            found[mode, checkout.name] = lint_checkout(checkout, overrides, sources)
        findings = [f for c in checkouts for f in found[mode, c.name]]
        print(f"\n## {mode} ({', '.join(sorted(commits))}): precision = true / labelled")
        rows, unlabelled = precision_table(findings, matcher, tuple(args.show))
        print("\n".join(rows))
        if unlabelled:
            print(f"\nunlabelled ({len(unlabelled)}), as label rows with verdict '?':")
            for finding in unlabelled:
                print(label_row(finding, commits))
    # A label is stale only when every configuration ran and none of them found it again.
    gone = [label for label in labels if label.project in commits and label not in matcher.used]
    if gone and len(args.mode) == len(MODES):
        print(
            f"\nlabels no finding matched any more ({len(gone)}; verdicts: "
            f"{', '.join(f'{v} {n}' for v, n in sorted(Counter(label.verdict for label in gone).items()))}):"
        )
        for label in gone:
            cell = f"cell {label.cell}:" if label.cell else ""
            print(f"  {label.verdict:<9} {label.code} {label.project}/{label.path}:{cell}{label.line}  {label.text}")
    if args.fix_check:
        for mode in args.mode:
            flags, overrides = MODES[mode]
            for checkout in checkouts:
                print(f"\n## --fix {' '.join(flags)} on a copy of {checkout.name}".rstrip())
                fix_check(checkout, flags, overrides, matcher, found[mode, checkout.name])


if __name__ == "__main__":
    main()
