"""Input and output inside traced code: print (PUR001), files/processes (PUR002), logging (PUR003)."""

from __future__ import annotations

import libcst as cst

from purelint._rule import Context, Fix, Invalid, Rule, build_fix, code_of

__all__ = ["IOInTraced", "LoggingInTraced", "PrintInTraced"]

_IO_CALLS = frozenset(
    {
        "builtins.input",
        "builtins.open",
        "io.open",
        "os.system",
        "os.popen",
        "os.remove",
        "os.unlink",
        "os.rename",
        "os.replace",
        "os.makedirs",
        "os.mkdir",
        "os.rmdir",
        "os.listdir",
        "os.scandir",
        "os.walk",
        "os.read",
        "os.write",
        "json.dump",
        "json.load",
        "pickle.dump",
        "pickle.load",
        "numpy.save",
        "numpy.savez",
        "numpy.load",
        "numpy.savetxt",
        "numpy.loadtxt",
        "torch.save",
        "torch.load",
    }
)
# Whole modules whose functions do IO. Not `pathlib`: building a `Path` does none (its IO methods,
# `read_text()` and friends, are caught by name).
_IO_MODULES = ("subprocess.", "shutil.", "glob.", "socket.", "urllib.request.", "requests.")
_PATH_METHODS = frozenset({"read_text", "write_text", "read_bytes", "write_bytes"})
_LOG_METHODS = frozenset({"debug", "info", "warning", "warn", "error", "exception", "critical", "fatal", "log"})
_LOG_FUNCTIONS = frozenset({"warnings.warn", *(f"logging.{m}" for m in _LOG_METHODS)})


class PrintInTraced(Rule):
    code = "PUR001"
    name = "print-in-traced-function"
    summary = "`print()` inside a traced function"
    message = "`print()` runs once, at trace time, and shows tracers; use `jax.debug.print`"
    untraced_message = "`print()` in library code; use `logging` or return the value"
    what = """
        Checks for calls to the builtin `print` inside functions that JAX traces. It leaves alone
        prints of what is known at trace time and meant to be seen then: string literals,
        `.shape`, `.dtype`, `.ndim`, `.sharding`, `jax.typeof(x)`, `len(x)`. Functions handed to
        `jax.debug.callback`, `io_callback` or `pure_callback` run on the host and are not traced.
    """
    why = """
        JAX runs the Python body of a jitted function once, to trace it. A `print` there fires
        during tracing only, prints abstract tracers instead of values, and is silent on every
        later call that hits the compilation cache.
    """
    example = """
        @jax.jit
        def step(x):
            print("x =", x)
            return x * 2
    """
    use_instead = """
        @jax.jit
        def step(x):
            jax.debug.print("x = {}", x)
            return x * 2
    """
    # Unsafe: `jax.debug.print` prints on every call (not once at trace time), asynchronously and
    # possibly out of order; output that tests or users read changes, even if for the better.
    fix_applicability = "unsafe"
    VALID = [
        "import jax\n@jax.jit\ndef f(x):\n    jax.debug.print('{}', x)\n    return x",
        "import jax\ndef f(x):\n    print(x)\n    return x",
        "import jax\nprint('module level is fine')\n",
        "import jax\ndef print(*a): pass\n@jax.jit\ndef f(x):\n    print(x)\n    return x",
        "import jax\n@jax.jit\ndef f(x):\n    print('tracing', x.shape, jax.typeof(x))\n    return x",
    ]
    INVALID = [
        Invalid(
            "import jax\n@jax.jit\ndef f(x):\n    print(x)\n    return x",
            line=4,
            column=5,
            expected_fix="import jax\n@jax.jit\ndef f(x):\n    jax.debug.print('{}', x)\n    return x",
        ),
        Invalid("def f(x):\n    print(x)\n", line=2, column=5, config={"scope": "all"}),
    ]

    def visit_Call(self, node: cst.Call, ctx: Context) -> None:
        metadata = [a for a in node.args if isinstance(a.value, (cst.Attribute, cst.Call))]
        if ctx.qualname(node.func) == "builtins.print" and not (
            metadata and all(_static(a.value, ctx) for a in node.args)
        ):
            # Untraced code prints once per call already: `jax.debug.print` would only change what is
            # printed (floats, lists), and the advice there is logging.
            ctx.report(node, fix=_debug_print(ctx, node) if ctx.traced else None)


_STATIC_ATTRIBUTES = frozenset({"shape", "dtype", "ndim", "size", "sharding", "aval", "weak_type"})
_STATIC_CALLS = frozenset(
    {
        "jax.typeof",
        "jax.numpy.shape",
        "jax.numpy.ndim",
        "jax.sharding.get_abstract_mesh",
        "builtins.type",
        "builtins.len",
    }
)


def _static(expr: cst.BaseExpression, ctx: Context) -> bool:
    """Known at trace time: strings, numbers, `.shape`/`.dtype`/`.sharding`, `jax.typeof(x)`, `len(x)`:
    printing them at trace time is the documented way to see them."""
    if isinstance(expr, (cst.SimpleString, cst.ConcatenatedString, cst.Integer, cst.Float)):
        return True
    if isinstance(expr, cst.FormattedString):
        return all(_static(p.expression, ctx) for p in expr.parts if isinstance(p, cst.FormattedStringExpression))
    if isinstance(expr, cst.Attribute):
        return expr.attr.value in _STATIC_ATTRIBUTES
    if isinstance(expr, cst.Call):
        return ctx.qualname(expr.func) in _STATIC_CALLS
    return False


def _debug_print(ctx: Context, call: cst.Call) -> Fix | None:
    """PUR001: `print(a, b)` -> `jax.debug.print("{} {}", a, b)`; string literals and f-strings
    become part of the format string (`print("x =", x)` -> `jax.debug.print("x = {}", x)`)."""
    if any(arg.keyword is not None or arg.star for arg in call.args):
        return None  # sep=, end=, file=, flush= and *args have no jax.debug.print spelling
    pieces: list[str] = []
    values: list[str] = []
    for arg in call.args:
        converted = _format_piece(arg.value)
        if converted is None:
            pieces.append("{}")
            values.append(code_of(arg.value).strip())
        else:
            pieces.append(converted[0])
            values.extend(converted[1])
    spelled, imported = ctx.reference("jax.debug.print")
    text = f"{spelled}({' '.join(pieces)!r}" + "".join(f", {v}" for v in values) + ")"
    return build_fix("unsafe", f"Use `{spelled}`", [ctx.edit(call, text), imported])


def _format_piece(node: cst.BaseExpression) -> tuple[str, list[str]] | None:
    """(format text, arguments) for a plain string or a simple f-string; None for anything else."""
    if isinstance(node, cst.SimpleString) and "b" not in node.prefix.lower():
        value = node.evaluated_value
        return (value.replace("{", "{{").replace("}", "}}"), []) if isinstance(value, str) else None
    if not isinstance(node, cst.FormattedString) or "b" in node.prefix.lower() or "r" in node.prefix.lower():
        return None
    text, args = [], []
    for part in node.parts:
        if isinstance(part, cst.FormattedStringText):
            if "\\" in part.value:
                return None  # escapes would need decoding; leave it to a person
            text.append(part.value.replace("{{", "{").replace("}}", "}").replace("{", "{{").replace("}", "}}"))
            continue
        spec = ""
        if part.format_spec:
            if not all(isinstance(p, cst.FormattedStringText) for p in part.format_spec):
                return None
            spec = ":" + "".join(p.value for p in part.format_spec)  # type: ignore[union-attr]
        conversion = f"!{part.conversion}" if part.conversion else ""
        if part.equal is not None:
            return None  # `{x=}` has no str.format spelling
        text.append("{" + conversion + spec + "}")
        args.append(code_of(part.expression).strip())
    return "".join(text), args


class IOInTraced(Rule):
    code = "PUR002"
    name = "io-in-traced-function"
    summary = "file, console or process IO inside a traced function"
    message = "`{call}` does IO at trace time only; do IO outside the traced function, or use `jax.debug.callback`"
    untraced_message = "`{call}` does IO; keep IO out of functions meant to be pure"
    what = """
        Checks for `input()`, `open()`, path reads and writes (`Path.read_text()`...), `os.system`,
        `subprocess`, `shutil` and save/load calls (`json`, `pickle`, `numpy`, `torch`) inside
        traced functions. Building a `pathlib.Path` (joining, `.stem`, `.parent`) does no IO and
        is left alone.
    """
    why = """
        The traced body runs once per compilation, not once per call: the file is read once and
        its contents are frozen into the compiled program as constants, writes happen only while
        tracing, and a prompt blocks compilation instead of each step.
    """
    example = """
        @jax.jit
        def loss(params, batch):
            scale = float(open("scale.txt").read())
            return scale * jnp.mean((params @ batch) ** 2)
    """
    use_instead = """
        scale = float(open("scale.txt").read())  # read once, outside


        @jax.jit
        def loss(params, batch, scale):
            return scale * jnp.mean((params @ batch) ** 2)
    """
    VALID = [
        "import jax\ndef load(p):\n    return open(p).read()",
        "import jax\n@jax.jit\ndef f(x, path):\n    return x\n",
        "import jax\ndata = open('f').read()\n@jax.jit\ndef f(x):\n    return x",
        "import jax, pathlib\n@jax.jit\ndef f(x, name):\n    p = pathlib.Path('/tmp') / name\n    return x",
    ]
    INVALID = [
        Invalid("import jax\n@jax.jit\ndef f(x):\n    s = input()\n    return x", line=4, column=9),
        Invalid("import jax, subprocess\n@jax.jit\ndef f(x):\n    subprocess.run(['ls'])\n    return x", line=4),
        Invalid("import os, jax\n@jax.jit\ndef f(x):\n    os.system('ls')\n    return x", line=4),
        Invalid("import jax\n@jax.jit\ndef f(x, p):\n    p.write_text('a')\n    return x", line=4),
        Invalid("def f(p):\n    with open(p) as h:\n        return h.read()", line=2, config={"scope": "all"}),
    ]

    def visit_Call(self, node: cst.Call, ctx: Context) -> None:
        qualname = ctx.qualname(node.func)
        if qualname is not None:
            if qualname in _IO_CALLS or qualname.startswith(_IO_MODULES):
                ctx.report(node, call=qualname.removeprefix("builtins."))
        elif isinstance(node.func, cst.Attribute) and node.func.attr.value in _PATH_METHODS:
            ctx.report(node, call=f".{node.func.attr.value}()")


class LoggingInTraced(Rule):
    code = "PUR003"
    name = "logging-in-traced-function"
    summary = "`logging` or `warnings.warn` inside a traced function"
    message = "`{call}` logs once, at trace time, with tracers; use `jax.debug.callback`"
    untraced_message = "`{call}` logs from a function meant to be pure; log outside it"
    what = """
        Checks for `logging` calls (module functions and loggers from `logging.getLogger`) and
        `warnings.warn` inside traced functions.
    """
    why = """
        Like `print`, a log call in a traced function runs only while JAX traces it: it records
        abstract tracers, once per compilation, and never on cached calls.
    """
    example = """
        log = logging.getLogger(__name__)


        @jax.jit
        def step(x):
            log.info("step %s", x)
            return x + 1
    """
    use_instead = """
        @jax.jit
        def step(x):
            jax.debug.callback(lambda v: log.info("step %s", v), x)
            return x + 1
    """
    VALID = [
        "import jax, logging\nlog = logging.getLogger()\ndef f(x):\n    log.info(x)",
        "import jax\n@jax.jit\ndef f(x, d):\n    return d.update(x)",
        "import jax\n@jax.jit\ndef f(x, log):\n    return x\n",
    ]
    INVALID = [
        Invalid("import jax, logging\n@jax.jit\ndef f(x):\n    logging.info('a')\n    return x", line=4),
        Invalid(
            "import jax, logging\nlog = logging.getLogger(__name__)\n@jax.jit\ndef f(x):\n    log.warning('a')\n",
            line=5,
        ),
        Invalid("import jax, warnings\n@jax.jit\ndef f(x):\n    warnings.warn('a')\n    return x", line=4),
        Invalid("from warnings import warn\ndef f(x):\n    warn('a')", line=3, config={"scope": "all"}),
    ]

    def visit_Call(self, node: cst.Call, ctx: Context) -> None:
        func = node.func
        qualname = ctx.qualname(func)
        if qualname in _LOG_FUNCTIONS:
            ctx.report(node, call=qualname)
            return
        if isinstance(func, cst.Attribute) and func.attr.value in _LOG_METHODS:
            receiver = func.value
            if isinstance(receiver, cst.Call):
                is_logger = ctx.qualname(receiver.func) == "logging.getLogger"
            else:
                is_logger = isinstance(receiver, cst.Name) and "logging.getLogger" in ctx.value_qualnames(
                    receiver.value
                )
            if is_logger:
                ctx.report(node, call=f"{code_of(receiver)}.{func.attr.value}")
