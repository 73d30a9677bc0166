"""Trace inference: which functions of a file JAX traces, through which transform, and how.

A function is traced when a transform is applied to it (`@jax.jit`, `jax.jit(f)`, `functools.partial`
of a transform, `f.defjvp(rule)`), when it is a body handed to `lax` (`lax.scan(body, ...)`), when it
is a method of an `eqx.Module` (other than the ones that build it), when it is nested in a traced
function, or when a traced function calls it. Each route is recorded on the function
(`FunctionInfo.reasons`, `applications`, `static_params`); functions handed to host callbacks run on
concrete values and are never traced. The transforms and frameworks themselves are data, in
`purelint._frameworks`.

Example:
    >>> import libcst as cst
    >>> source = "import jax\\n@jax.jit\\ndef f(x):\\n    return g(x)\\ndef g(y):\\n    return y\\n"
    >>> model = analyze(cst.parse_module(source))
    >>> [(fn.name, fn.reasons) for fn in model.functions]
    [('f', [('decorator', 'jax.jit')]), ('g', [('called', 'f')])]
"""

from __future__ import annotations

from collections.abc import Iterable

import libcst as cst

from purelint._analysis._cst import literal
from purelint._analysis._model import SemanticModel, build_model
from purelint._analysis._scopes import Application, FunctionInfo, Scope
from purelint._frameworks import (
    ARGUMENT_DROPPERS,
    CACHING,
    CLASS_FRAMEWORKS,
    HOST_CALLBACKS,
    RULE_DEFINERS,
    TRANSFORMS,
    WRAPPED_ARGUMENTS,
    Transform,
)

__all__ = ["LAX_BODIES", "analyze", "caches_program"]

LAX_BODIES = frozenset(name for name, t in TRANSFORMS.items() if t.mode == "body")


def analyze(module: cst.Module, wanted: Iterable[str] = (), transforms: Iterable[str] = ()) -> SemanticModel:
    """The semantic model of `module` with its trace routes filled in; `wanted` as for `build_model`,
    `transforms` names extra transforms (the `extra-transforms` setting) that trace abstractly."""
    model = build_model(module, wanted)
    _Inference(model, transforms).run()
    return model


def caches_program(fn: FunctionInfo | None, model: SemanticModel) -> bool:
    """Whether `fn` (or a function around it) is traced by a transform that caches the program
    (`jit`), so a later module-level rebinding leaves it stale; `grad`/`vmap`/`vjp` re-trace. A
    function jitted once, by a module-level statement that runs the result at once
    (`jax.jit(f)(x)`, `jax.jit(f).trace(x)`), is traced with the values of that moment and never
    called again: nothing can go stale."""
    while fn is not None:
        caching = [a for a in fn.applications if a.transform.name in CACHING]
        if len(caching) > 1 or (caching and not _run_at_once(caching[0], model)):
            return True
        fn = fn.parent.function() if fn.parent is not None else None  # type: ignore[assignment]
    return False


def _run_at_once(application: Application, model: SemanticModel) -> bool:
    """`jax.jit(f)(...)` or `jax.jit(f).trace(...)`/`.lower(...)` in a simple module-level statement
    (not a loop body, not a function: it runs once)."""
    call, holder = application.call, application.holder
    if call is None or application.scope is not model.module_scope:
        return False
    if not isinstance(model.module.body[application.top], cst.SimpleStatementLine):
        return False
    if isinstance(holder, cst.Call) and holder.func is call:
        return True
    return (
        isinstance(holder, cst.Attribute)
        and holder.value is call
        and holder.attr.value in ("trace", "lower", "eval_shape")
    )


class _Inference:
    """One pass of trace inference over a model: direct routes first, then what they reach."""

    def __init__(self, model: SemanticModel, transforms: Iterable[str]) -> None:
        self.model = model
        self.transforms = {name: t for name, t in TRANSFORMS.items() if t.mode != "body"}
        self.transforms.update((name, Transform(name, "abstract")) for name in transforms if name not in TRANSFORMS)
        self.queue: list[FunctionInfo] = []
        self.host: set[int] = set()  # functions handed to host callbacks: they run on concrete values

    def mark(
        self,
        fn: FunctionInfo,
        route: str,
        detail: str,
        args: Iterable[cst.Arg] = (),
        application: Application | None = None,
    ) -> None:
        if id(fn) in self.host:
            return
        static = _static(args, application.positional(fn) if application is not None else fn.positional)
        if not fn.traced:
            fn.traced, fn.static_params = True, static
            self.queue.append(fn)
        else:
            fn.static_params &= static
        fn.reasons.append((route, detail))
        if application is not None:
            fn.applications.append(application)

    def transform_of(self, expr: cst.BaseExpression, scope: Scope) -> tuple[Transform, list[cst.Arg]] | None:
        """(transform, its keyword arguments) when `expr` is a transform that traces the function it
        is given, possibly called with options (`jax.jit(static_argnums=0)`) or wrapped in
        `functools.partial`. Bodies (`lax.scan`) are not included."""
        qualname = self.model.qualname(expr, scope)
        found = self.transforms.get(qualname)  # type: ignore[arg-type]
        if found is not None:
            return found, []
        if isinstance(expr, cst.Call):
            qualname = self.model.qualname(expr.func, scope)
            found = self.transforms.get(qualname)  # type: ignore[arg-type]
            if found is not None and not any(a.keyword is None for a in expr.args):
                return found, list(expr.args)
            if qualname == "functools.partial" and expr.args:
                found = self.transforms.get(self.model.qualname(expr.args[0].value, scope))  # type: ignore[arg-type]
                if found is not None:
                    return found, list(expr.args[1:])
        return None

    def run(self) -> None:
        model = self.model
        for node, scope, _parent, top, _store in model.events:
            if type(node) is cst.Call and node.args and model.qualname(node.func, scope) in HOST_CALLBACKS:  # type: ignore[attr-defined]
                self.host.update(id(fn) for fn in model.function_refs(node.args[0].value, scope, top))  # type: ignore[attr-defined]
        self.decorators()
        self.calls()
        self.frameworks()
        for fn in model.functions:
            info = fn.class_info
            # Not static or class methods: they see no instance; traced only where traced code calls them
            # (a `@staticmethod` passed on as a host callback is never traced).
            if info is not None and info.is_module and not fn.is_init and fn.self_name is not None:
                self.mark(fn, "module method", info.name)
        while self.queue:
            fn = self.queue.pop()
            for child in fn.children:
                self.mark(child, "nested", fn.name)
            for call in fn.calls:
                if isinstance(call.func, (cst.Name, cst.Attribute)):
                    for callee in model.function_refs(call.func, fn):
                        self.mark(callee, "called", fn.name)

    def decorators(self) -> None:
        """`@jax.jit`, `@partial(jax.jit, ...)`, and `@f.defjvp` on a same-file `f`."""
        for fn in self.model.functions:
            if fn.is_lambda:
                continue
            for decorator in fn.node.decorators:  # type: ignore[union-attr]
                found = self.transform_of(decorator.decorator, fn.parent)  # type: ignore[arg-type]
                if found:
                    transform, options = found
                    application = Application(transform, tuple(options), decorator.decorator, fn.top, fn.parent)  # type: ignore[arg-type]
                    self.mark(fn, "decorator", transform.name, options, application)
                elif (
                    isinstance(decorator.decorator, cst.Attribute)
                    and decorator.decorator.attr.value in RULE_DEFINERS
                    and self.model.function_refs(decorator.decorator.value, fn.parent)  # type: ignore[arg-type]
                ):
                    self.mark(fn, "decorator", decorator.decorator.attr.value)

    def calls(self) -> None:
        """`jax.jit(f)`, wrappers' functions (`jax.jit(apply)` with `apply` from `hk.transform(f)`),
        `lax` bodies (`lax.scan(body, ...)`) and `f.defvjp(fwd, bwd)`."""
        model = self.model
        for node, scope, parent, top, _store in model.events:
            if type(node) is not cst.Call:
                continue
            func = node.func  # type: ignore[attr-defined]
            args = node.args  # type: ignore[attr-defined]
            found = self.transform_of(func, scope)
            target = next((a for a in args if a.keyword is None or a.keyword.value in ("fun", "f")), None)
            if found and target is not None:
                transform, options = found
                options = [*options, *(a for a in args if a is not target)]
                for fn in model.function_refs(target.value, scope, top):
                    application = Application(
                        transform,
                        tuple(options),
                        func,
                        top,
                        scope,
                        _partial_bound(target.value, fn),
                        node,
                        parent,  # type: ignore[arg-type]
                        _is_bound_method(target.value),
                    )
                    self.mark(fn, "call", transform.name, options, application)
                wrapped = []
                if isinstance(target.value, (cst.Name, cst.Attribute)):
                    wrapped = self.wrapped_functions(target.value, scope, top)
                for fn, leading in wrapped:
                    application = Application(
                        transform, tuple(options), func, top, scope, frozenset(), node, parent, leading=leading
                    )  # type: ignore[arg-type]
                    self.mark(fn, "call", transform.name, options, application)
                continue
            qualname = model.qualname(func, scope)
            body = TRANSFORMS.get(qualname) if qualname in LAX_BODIES else None  # type: ignore[arg-type]
            if body is not None or (isinstance(func, cst.Attribute) and func.attr.value in RULE_DEFINERS):
                for arg in args:
                    for fn in model.function_refs(arg.value, scope, top):
                        if body is not None:
                            application = Application(
                                body,
                                (),
                                func,
                                top,
                                scope,
                                _partial_bound(arg.value, fn),
                                node,
                                parent,
                                _is_bound_method(arg.value),  # type: ignore[arg-type]
                            )
                            self.mark(fn, "lax", body.name, (), application)
                        else:
                            self.mark(fn, "call", func.attr.value)

    def wrapped_functions(
        self, expr: cst.BaseExpression, scope: Scope, top: int | None = None
    ) -> list[tuple[FunctionInfo, int]]:
        """Same-file functions a wrapper's returned function calls, with its leading arguments:
        `apply` in `init, apply = hk.transform(f)` (or `hk.without_apply_rng(...)`), `t.apply` with
        `t = hk.transform(f)`, `hk.transform(f).apply` (see `_frameworks.WRAPPED_ARGUMENTS`)."""
        model = self.model
        sources: list[tuple[cst.BaseExpression, Scope, str | int]] = []
        if isinstance(expr, cst.Name):
            where = model.lookup(expr.value, scope)
            if where is not None:
                sources = [(value, where, index) for value, index in where.unpacked.get(expr.value, ())]
        elif isinstance(expr, cst.Attribute):
            if isinstance(expr.value, cst.Name):
                where, values = model.assigned_values(expr.value.value, scope)
                sources = [(value, where, expr.attr.value) for value in values]  # type: ignore[misc]
            else:
                sources = [(expr.value, scope, expr.attr.value)]
        found = []
        for value, where, which in sources:
            dropped: dict[str, int] = {}
            while isinstance(value, cst.Call) and value.args:
                qualname = model.qualname(value.func, where)
                if qualname in ARGUMENT_DROPPERS:
                    dropped = ARGUMENT_DROPPERS[qualname]  # type: ignore[index]
                    value = value.args[0].value
                    continue
                returned = WRAPPED_ARGUMENTS.get(qualname)  # type: ignore[arg-type]
                if returned is not None:
                    for index, (name, leading) in enumerate(returned):
                        if which in (index, name):
                            leading -= dropped.get(name, 0)
                            found += [(fn, leading) for fn in model.function_refs(value.args[0].value, where, top)]
                break
        return found

    def frameworks(self) -> None:
        """Which framework each class belongs to, through its bases (same-file bases included)."""
        model = self.model
        changed = True
        while changed:
            changed = False
            for info in model.classes:
                if info.framework is not None:
                    continue
                for arg in info.node.bases:  # type: ignore[union-attr]
                    qualname = model.qualname(arg.value, info.parent)  # type: ignore[arg-type]
                    framework = CLASS_FRAMEWORKS.get(qualname)  # type: ignore[arg-type]
                    if framework is None:
                        base = model.class_named(arg.value, info.parent)  # type: ignore[arg-type]
                        framework = base.framework if base is not None else None
                    if framework is None and qualname is not None and qualname.endswith("TestCase"):
                        framework = "unittest"  # a test base from another file (`test_util.JaxTestCase`)
                    if framework is not None:
                        info.framework = framework
                        changed = True
                        break


def _static(args: Iterable[cst.Arg], positional: list[str]) -> frozenset[str]:
    """Parameters `static_argnums`/`static_argnames` name among `args`."""
    static = set()
    for arg in args:
        keyword = arg.keyword.value if arg.keyword else None
        if keyword not in ("static_argnums", "static_argnames"):
            continue
        value = literal(arg.value)
        values = value if isinstance(value, (tuple, list)) else (value,)
        for item in values:
            if keyword == "static_argnames" and isinstance(item, str):
                static.add(item)
            elif isinstance(item, int) and -len(positional) <= item < len(positional):
                static.add(positional[item])
    return frozenset(static)


def _is_bound_method(target: cst.BaseExpression) -> bool:
    while isinstance(target, cst.Call) and target.args:  # functools.partial(obj.method, ...)
        target = target.args[0].value
    return isinstance(target, cst.Attribute)


def _partial_bound(target: cst.BaseExpression, fn: FunctionInfo) -> frozenset[str]:
    """Parameters `functools.partial(f, *args, **kwargs)` fixes (static for the transform applied to it)."""
    if not isinstance(target, cst.Call):
        return frozenset()
    params = fn.positional[1:] if _is_bound_method(target) and fn.self_name else fn.positional
    positional = sum(1 for a in target.args[1:] if a.keyword is None)
    return frozenset(params[:positional]) | {a.keyword.value for a in target.args if a.keyword is not None}
