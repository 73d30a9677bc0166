"""[tool.purelint] discovery and settings, CLI overrides, suppression comments, file discovery."""

import textwrap

import pytest

from purelint import Config, ConfigError, iter_files, lint_source, load_config
from purelint._cli import main

IMPURE = "import jax\n@jax.jit\ndef f(x):\n    print(x)\n    open('log')\n    return x\n"


def write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


def run(capsys, *argv):
    code = main([*argv, "--output-format", "github"])
    out, err = capsys.readouterr()
    return code, [line.split("::", 2)[2].split()[0] for line in out.splitlines()], err


@pytest.fixture
def project(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "pkg" / "a.py", IMPURE)
    return tmp_path


def test_nearest_pyproject_select_and_ignore(project, capsys):
    assert run(capsys, "pkg")[:2] == (1, ["PUR001", "PUR002"])
    write(project / "pyproject.toml", '[tool.purelint]\nselect = ["PUR0"]\nignore = ["PUR001"]\n')
    assert run(capsys, "pkg")[:2] == (1, ["PUR002"])
    # the nearest file with a [tool.purelint] table wins, looked up from the linted path
    write(project / "pkg" / "pyproject.toml", '[tool.purelint]\nignore = ["PUR002"]\n')
    assert run(capsys, "pkg")[:2] == (1, ["PUR001"])


def test_cli_overrides_the_file(project, capsys):
    write(project / "pyproject.toml", '[tool.purelint]\nselect = ["PUR001"]\n')
    assert run(capsys, "pkg")[1] == ["PUR001"]
    assert run(capsys, "pkg", "--select", "PUR002")[1] == ["PUR002"]
    assert run(capsys, "pkg", "--extend-select", "PUR002")[1] == ["PUR001", "PUR002"]
    assert run(capsys, "pkg", "--ignore", "PUR001")[:2] == (0, [])


def test_explicit_config_file(project, capsys):
    write(project / "other.toml", '[tool.purelint]\nselect = ["PUR002"]\n')
    assert run(capsys, "pkg", "--config", "other.toml")[1] == ["PUR002"]
    code, _, err = run(capsys, "pkg", "--config", "missing.toml")
    assert code == 2 and err.count("\n") == 1 and "missing.toml" in err


def test_per_file_ignores_and_exclude(project, capsys):
    write(project / "pkg" / "tests" / "t.py", IMPURE)
    write(project / "pkg" / "gen" / "g.py", IMPURE)
    write(
        project / "pyproject.toml",
        '[tool.purelint]\nexclude = ["pkg/gen/**"]\n[tool.purelint.per-file-ignores]\n"**/tests/*.py" = ["PUR001", "PUR002"]\n',
    )
    code, codes, _ = run(capsys, ".")
    assert (code, codes) == (1, ["PUR001", "PUR002"])  # only pkg/a.py
    # named explicitly, an excluded file is linted, unless --force-exclude
    assert run(capsys, "pkg/gen/g.py")[1] == ["PUR001", "PUR002"]
    assert run(capsys, "pkg/gen/g.py", "--force-exclude")[:2] == (0, [])


def test_gitignore_is_respected(project, capsys):
    (project / ".git").mkdir()
    write(project / ".gitignore", "build_out/\n*_generated.py\n!keep_generated.py\n")
    write(project / "build_out" / "x.py", IMPURE)
    write(project / "pkg" / "y_generated.py", IMPURE)
    write(project / "pkg" / "keep_generated.py", IMPURE)
    names = sorted(p.name for p in iter_files(["."], Config(root=project)))
    assert names == ["a.py", "keep_generated.py"]
    everything = sorted(p.name for p in iter_files(["."], Config(root=project, respect_gitignore=False)))
    assert everything == ["a.py", "keep_generated.py", "x.py", "y_generated.py"]
    assert run(capsys, ".", "--no-respect-gitignore", "--select", "PUR001")[1] == ["PUR001"] * 4


def test_scope_and_extra_transforms_from_file(project, capsys):
    write(project / "pkg" / "b.py", "import mylib\n@mylib.compile\ndef g(x):\n    print(x)\ndef h():\n    print(1)\n")
    assert run(capsys, "pkg/b.py")[:2] == (0, [])
    write(project / "pyproject.toml", '[tool.purelint]\nextra-transforms = ["mylib.compile"]\n')
    assert run(capsys, "pkg/b.py")[1] == ["PUR001"]
    write(project / "pyproject.toml", '[tool.purelint]\nscope = "all"\n')
    assert run(capsys, "pkg/b.py")[1] == ["PUR001", "PUR001"]
    assert run(capsys, "pkg/b.py", "--scope", "traced")[1] == []


@pytest.mark.parametrize(
    "text, message",
    [
        ('[tool.purelint]\nselect = ["PUR777"]\n', "PUR777"),
        ('[tool.purelint]\nscope = "some"\n', "scope"),
        ("[tool.purelint]\ncolour = true\n", "colour"),
        ("[tool.purelint]\nselect = 3\n", "select"),
        ("[tool.purelint\n", "TOML"),
    ],
)
def test_bad_configuration_is_one_line_and_exit_2(project, capsys, text, message):
    write(project / "pyproject.toml", text)
    code, codes, err = run(capsys, "pkg")
    assert code == 2 and codes == [] and message in err
    assert err.startswith("purelint: error:") and err.count("\n") == 1


def test_bad_cli_values_exit_2(project, capsys):
    assert main(["pkg", "--select", "NOPE1"]) == 2
    assert main(["pkg", "--scope", "sideways"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 2 and "NOPE1" in err[0] and "sideways" in err[1]


def test_library_config_objects(tmp_path):
    write(tmp_path / "pyproject.toml", '[tool.purelint]\nselect = ["PUR0"]\nextend-select = ["PUR201"]\n')
    config = load_config(start=tmp_path)
    assert config.enabled_codes() == {"PUR001", "PUR002", "PUR003", "PUR201"}
    assert config.replace(scope="all").scope == "all"
    with pytest.raises(ConfigError):
        config.replace(scope="everything")
    assert Config().fingerprint() != Config(scope="all").fingerprint()


@pytest.mark.parametrize(
    "comment, kept",
    [
        ("", ["PUR001", "PUR002"]),
        ("  # noqa", ["PUR002"]),
        ("  # noqa: PUR001", ["PUR002"]),
        ("  # NOQA:PUR001,PUR002", ["PUR002"]),  # open() is on the next line
        ("  # noqa: PUR002", ["PUR001", "PUR002"]),
        ("  # noqa: E501", ["PUR001", "PUR002"]),
    ],
)
def test_line_suppressions(comment, kept):
    source = f"import jax\n@jax.jit\ndef f(x):\n    print(x){comment}\n    open('x')\n    return x\n"
    assert [d.code for d in lint_source(source)] == kept


@pytest.mark.parametrize(
    "header, kept",
    [
        ("# purelint: noqa\n", []),
        ("# purelint: noqa: PUR002\n", ["PUR001"]),
        ("x = 1  # purelint: noqa\n", ["PUR001", "PUR002"]),  # only a comment on its own line counts
    ],
)
def test_file_suppressions(header, kept):
    assert [d.code for d in lint_source(header + IMPURE)] == kept


def test_noqa_inside_a_string_suppresses_nothing():
    line = "import jax\n@jax.jit\ndef f(x):\n    print('# noqa')\n    return x\n"
    assert [d.code for d in lint_source(line)] == ["PUR001"]
    whole_file = 'DOC = """\n# purelint: noqa\n"""\n' + IMPURE
    assert [d.code for d in lint_source(whole_file)] == ["PUR001", "PUR002"]
    # A real comment after such a string still counts.
    assert lint_source(line.replace("print('# noqa')", "print('# noqa')  # noqa: PUR001")) == []


def test_noqa_on_the_last_line_of_a_multiline_call():
    source = "import jax\n@jax.jit\ndef f(x):\n    print(\n        x,\n    )  # noqa: PUR001\n    return x\n"
    assert lint_source(source) == []


def test_noqa_with_several_codes_covers_several_findings_on_one_line():
    source = "import jax\n@jax.jit\ndef f(x):\n    print(open('x'))  # noqa: PUR001, PUR002\n    return x\n"
    assert lint_source(source) == []
    assert [d.code for d in lint_source(source.replace(", PUR002", ""))] == ["PUR002"]
