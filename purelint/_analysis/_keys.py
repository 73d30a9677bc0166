"""PRNG key-reuse analysis (PUR204) over one function, by abstract interpretation of its statements.

Every binding of a name makes a new key *value*. A value is *consumed* when it is the key of a
`jax.random` sampling call or of `jax.random.split`, or when it is passed on to another call (which
presumably draws from it). Consuming a value twice is reuse when at least one of the two consumers is
a `jax.random` call: a key passed to two unknown calls may be passed to helpers that only inspect it.
`fold_in(key, data)` derives a new key without consuming (the correct idiom inside loops), and
`split(key)[0]` / `split(key)[1]` are different keys. `keys[0]` after `keys` was consumed is the same
key again; `jax.jit(f)(key)` consumes `key` as `f(key)` does; a function reading a module-level key that
the module's top-level code consumed (`module_consumed`) starts with that key consumed.

Control flow: the branches of `if`/`match`/ternaries start from the same state and are merged after
(a key consumed on any path counts as consumed); a branch that returns or raises does not flow on.
Loops and comprehensions run twice: the second pass starts from what the end of the body feeds back,
so a key consumed in the body and not rebound each iteration is reported as reused across iterations.
Nested functions and lambdas are separate scopes and are left to their own analysis.

Name resolution is a callback (`resolve(expr) -> qualified name or None`), so the analysis plugs into
any resolver; `resolver_for(module)` is the semantic model's, from the module's top level.

Example:
    >>> import libcst as cst
    >>> module = cst.parse_module(
    ...     "import jax\\n"
    ...     "def f(key):\\n"
    ...     "    a = jax.random.normal(key, (3,))\\n"
    ...     "    b = jax.random.uniform(key, (3,))\\n"
    ...     "    return a + b\\n")
    >>> [(r.name, r.loop) for r in find_key_reuse(module.body[1], resolver_for(module))]
    [('key', False)]
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import libcst as cst

from purelint._analysis._cst import SCOPE_TYPES, bound_names, code_of, iter_children, parameters
from purelint._analysis._key_calls import NOT_CONSUMING, RANDOM, Helper, Resolver, called_function, inspects
from purelint._analysis._model import build_model


@dataclasses.dataclass(frozen=True)
class Use:
    """A consumption of a key: the key expression, the consumer, and `split(...)[i]`'s index."""

    node: cst.BaseExpression
    kind: str  # "random" (sampling), "split", or "call" (passed on to something else)
    callee: str  # qualified name of the consumer, or its source text
    index: object = None


@dataclasses.dataclass(frozen=True)
class Reuse:
    """`node` consumes the key `name` that `first` already consumed; `loop`: across loop iterations."""

    node: cst.BaseExpression
    name: str
    first: Use
    use: Use
    loop: bool


@dataclasses.dataclass
class _State:
    env: dict[str, int]  # variable (or `keys[0]`) -> the key value it holds
    used: dict[int, Use]  # key value -> its first consumption

    def copy(self) -> _State:
        return _State(dict(self.env), dict(self.used))


@dataclasses.dataclass
class _Loop:
    breaks: list[_State] = dataclasses.field(default_factory=list)
    continues: list[_State] = dataclasses.field(default_factory=list)


def find_key_reuse(
    function: cst.FunctionDef | cst.Lambda | cst.Module,
    resolve: Resolver,
    helper: Helper | None = None,
    outer: Mapping[str, Use] | None = None,
) -> list[Reuse]:
    """Every place in `function` (not its nested functions), or in a module's top-level statements,
    that consumes an already consumed key. `helper` says which same-file calls draw from a key
    argument (`sample(key)` where `sample` calls `jax.random.normal(key, ...)`); `outer`: the
    module's keys its top-level code consumes (`module_consumed`), which `function` reads as globals."""
    flow, _ = _interpret(function, resolve, helper, outer or {})
    return sorted(flow.found.values(), key=lambda r: flow.order[id(r.node)])


def module_consumed(module: cst.Module, resolve: Resolver, helper: Helper | None = None) -> dict[str, Use]:
    """The module-level keys its top-level code has consumed by its end, with their first consumption:
    a function drawing from one of them again makes equal "random" numbers."""
    _, state = _interpret(module, resolve, helper, {})
    if state is None:
        return {}
    return {name: state.used[value] for name, value in state.env.items() if value in state.used and "[" not in name}


def _interpret(
    function: cst.FunctionDef | cst.Lambda | cst.Module,
    resolve: Resolver,
    helper: Helper | None,
    outer: Mapping[str, Use],
) -> tuple[_Flow, _State | None]:
    flow = _Flow(resolve, helper)
    state = _State({}, {})
    params = set()
    if not isinstance(function, cst.Module):
        for param in parameters(function.params, star=False, star_kwarg=False):
            flow.bind_name(param.name.value, state)
            params.add(param.name.value)
    for name, use in outer.items():
        if name not in params:
            value = state.env[name] = next(flow.values)
            state.used[value] = use
    if isinstance(function, cst.Lambda):
        flow.expr(function.body, state)
        return flow, state
    if isinstance(function, cst.Module):
        return flow, flow.in_order(function.body, state, flow.statement)
    return flow, flow.suite(function.body, state)


def resolver_for(module: cst.Module) -> Resolver:
    """The semantic model's resolver, from the module's top level (unshadowed builtins are `builtins.<name>`)."""
    model = build_model(module)
    return lambda expr: model.qualname(expr, model.module_scope)


def _literal_index(node: cst.Subscript) -> object:
    if len(node.slice) != 1 or not isinstance(node.slice[0].slice, cst.Index):
        return None
    value = node.slice[0].slice.value
    if isinstance(value, cst.Integer):
        return int(value.value, 0)
    if (
        isinstance(value, cst.UnaryOperation)
        and isinstance(value.operator, cst.Minus)
        and isinstance(value.expression, cst.Integer)
    ):
        return -int(value.expression.value, 0)
    if isinstance(value, cst.SimpleString):
        return value.value
    return None


def _entity(node: cst.BaseExpression) -> str | None:
    """The tracked variable an expression names: `key`, or `keys[0]` for a literal index."""
    if isinstance(node, cst.Name):
        return node.value
    if isinstance(node, cst.Subscript) and isinstance(node.value, cst.Name):
        index = _literal_index(node)
        if index is not None:
            return f"{node.value.value}[{index!r}]"
    return None


class _Flow:
    """The abstract interpretation of one function's statements (see the module docstring); the
    expressions go through `_Expressions`."""

    def __init__(self, resolve: Resolver, helper: Helper | None = None) -> None:
        self.resolve = resolve
        self.helper = helper
        self.values = itertools.count()
        self.loops: list[_Loop] = []
        self.found: dict[int, Reuse] = {}
        self.order: dict[int, int] = {}
        self.in_second_pass = 0
        self.expressions = _Expressions(self)

    # -- values -----------------------------------------------------------------------------------

    def bind_name(self, name: str, state: _State) -> None:
        state.env[name] = next(self.values)
        prefix = name + "["
        for entity in [e for e in state.env if e.startswith(prefix)]:
            del state.env[entity]

    def bind(self, target: cst.BaseExpression, state: _State) -> None:
        if isinstance(target, cst.Name):
            self.bind_name(target.value, state)
        elif isinstance(target, (cst.Tuple, cst.List)):
            for element in target.elements:
                self.bind(element.value, state)
        elif isinstance(target, cst.StarredElement):
            self.bind(target.value, state)
        elif isinstance(target, cst.Subscript):
            self.expr(target.value, state)
            for index in target.slice:
                self.expr(index, state)
            entity = _entity(target)
            if entity is not None:
                state.env[entity] = next(self.values)
        elif isinstance(target, cst.Attribute):
            self.expr(target.value, state)

    def consume(self, key: cst.BaseExpression, use: Use, state: _State) -> None:
        entity = _entity(key)
        if entity is None or entity in ("None", "True", "False"):
            return
        value = state.env.get(entity)
        if value is None:
            value = state.env[entity] = next(self.values)
            whole = state.env.get(entity.partition("[")[0])
            if whole is not None and whole in state.used:
                state.used[value] = state.used[whole]  # `keys[0]` after `keys` was passed on: the same key
        first = state.used.get(value)
        if first is None:
            state.used[value] = use
            return
        if first.kind == use.kind == "call":
            return
        if first.kind == use.kind == "split" and None not in (first.index, use.index) and first.index != use.index:
            return
        if id(key) not in self.found:
            self.order.setdefault(id(key), len(self.order))
            self.found[id(key)] = Reuse(key, entity, first, use, loop=self.in_second_pass > 0)

    # -- statements -------------------------------------------------------------------------------

    def suite(self, suite: cst.BaseSuite, state: _State | None) -> _State | None:
        visit = self.small if isinstance(suite, cst.SimpleStatementSuite) else self.statement
        return self.in_order(suite.body, state, visit)

    def in_order(self, nodes: Sequence[cst.CSTNode], state: _State | None, visit) -> _State | None:
        """`visit` each node in turn; None (the code after a return or raise) stops the walk."""
        for node in nodes:
            if state is None:
                return None
            state = visit(node, state)
        return state

    def statement(self, node: cst.CSTNode, state: _State) -> _State | None:
        if isinstance(node, cst.SimpleStatementLine):
            return self.in_order(node.body, state, self.small)
        if isinstance(node, cst.If):
            self.expr(node.test, state)
            taken = self.suite(node.body, state.copy())
            if node.orelse is None:
                other: _State | None = state
            elif isinstance(node.orelse, cst.If):
                other = self.statement(node.orelse, state.copy())
            else:
                other = self.suite(node.orelse.body, state.copy())
            return _merge([taken, other], self.values)
        if isinstance(node, (cst.For, cst.While)):
            return self.loop(node, state)
        if isinstance(node, (cst.Try, cst.TryStar)):
            return self.try_(node, state)
        if isinstance(node, cst.With):
            for item in node.items:
                self.expr(item.item, state)
                if item.asname is not None:
                    self.bind(item.asname.name, state)
            return self.suite(node.body, state)
        if isinstance(node, cst.Match):
            self.expr(node.subject, state)
            ends = [self.suite(case.body, state.copy()) for case in node.cases]
            return _merge([*ends, state], self.values)
        if isinstance(node, (cst.FunctionDef, cst.ClassDef)):
            self.bind_name(node.name.value, state)
            return state
        return state

    def small(self, node: cst.CSTNode, state: _State) -> _State | None:
        if isinstance(node, cst.Assign):
            self.expr(node.value, state)
            source = _entity(node.value)
            held = state.env.get(source) if source is not None else None
            for target in node.targets:
                self.bind(target.target, state)
                if held is not None and isinstance(target.target, cst.Name):
                    state.env[target.target.value] = held  # an alias: the same key value
        elif isinstance(node, cst.AnnAssign):
            if node.value is not None:
                self.expr(node.value, state)
                self.bind(node.target, state)
        elif isinstance(node, cst.AugAssign):
            self.expr(node.value, state)
            self.bind(node.target, state)
        elif isinstance(node, (cst.Return, cst.Raise)):
            self.children(node, state)
            return None
        elif isinstance(node, (cst.Break, cst.Continue)):
            if self.loops:
                (self.loops[-1].breaks if isinstance(node, cst.Break) else self.loops[-1].continues).append(state)
            return None
        elif isinstance(node, cst.Del):
            for name in bound_names(node.target):
                state.env.pop(name, None)
        elif isinstance(node, (cst.Import, cst.ImportFrom)):
            if not isinstance(node.names, cst.ImportStar):
                for alias in node.names:
                    local: cst.BaseExpression = alias.asname.name if alias.asname is not None else alias.name
                    while isinstance(local, cst.Attribute):
                        local = local.value
                    if isinstance(local, cst.Name):
                        self.bind_name(local.value, state)
        elif not isinstance(node, (cst.Global, cst.Nonlocal)):
            self.children(node, state)
        return state

    def loop(self, node: cst.For | cst.While, state: _State) -> _State | None:
        if isinstance(node, cst.For):
            self.expr(node.iter, state)
        head = state
        exits: list[_State | None] = []
        back: _State | None = None
        for second in (False, True):
            self.in_second_pass += second
            self.loops.append(_Loop())
            entry = head.copy()
            if isinstance(node, cst.For):
                self.bind(node.target, entry)
            else:
                self.expr(node.test, entry)
            end = self.suite(node.body, entry)
            frame = self.loops.pop()
            self.in_second_pass -= second
            exits += frame.breaks
            back = _merge([end, *frame.continues], self.values)
            head = _merge([head, back], self.values) or head
        if isinstance(node, cst.While):
            self.expr(node.test, head)
        # `for i in range(3)` runs its body at least once: no path skips it.
        always = back is not None and _runs_at_least_once(node, self.resolve) and not exits
        after: _State | None = back if always else head
        if node.orelse is not None:
            after = self.suite(node.orelse.body, head.copy())
        return _merge([after, *exits], self.values)

    def try_(self, node: cst.Try | cst.TryStar, state: _State) -> _State | None:
        before = state.copy()
        end = self.suite(node.body, state)
        if end is not None and node.orelse is not None:
            end = self.suite(node.orelse.body, end)
        outcomes = [end]
        for handler in node.handlers:
            entry = before.copy()
            if handler.name is not None:
                self.bind(handler.name.name, entry)
            outcomes.append(self.suite(handler.body, entry))
        merged = _merge(outcomes, self.values)
        if node.finalbody is not None:
            return self.suite(node.finalbody.body, merged) if merged is not None else None
        return merged

    # -- expressions ------------------------------------------------------------------------------

    def children(self, node: cst.CSTNode, state: _State) -> None:
        self.expressions.run(list(iter_children(node)), state)

    def expr(self, node: cst.CSTNode, state: _State) -> None:
        self.expressions.run([node], state)


# An item of `_Expressions.run`'s work stack: an expression to evaluate in a state, or (None, step)
# for a step to take once what was pushed after it has been evaluated.
_Work = tuple["cst.CSTNode | None", Any]
_COMPREHENSIONS = (cst.ListComp, cst.SetComp, cst.GeneratorExp, cst.DictComp)


class _Expressions:
    """Evaluates expressions in source order with an explicit work stack instead of recursion, so
    that expressions nested thousands deep (`a + b + ... + z`) are analysed like any other."""

    def __init__(self, flow: _Flow) -> None:
        self.flow = flow

    def run(self, nodes: Sequence[cst.CSTNode], state: _State) -> None:
        """Evaluate `nodes`, in order, in `state`."""
        work: list[_Work] = [(node, state) for node in reversed(nodes)]
        while work:
            node, held = work.pop()
            if node is None:
                held()  # a step whose operands are done
                continue
            kind = type(node)
            if kind is cst.Call:
                self.call(node, held, None, work)  # type: ignore[arg-type]
            elif kind is cst.Subscript and type(node.value) is cst.Call:  # type: ignore[attr-defined]
                work.extend((element, held) for element in reversed(node.slice))  # type: ignore[attr-defined]
                self.call(node.value, held, _literal_index(node), work)  # type: ignore[arg-type, attr-defined]
            elif kind is cst.IfExp:
                self.if_expression(node, held, work)  # type: ignore[arg-type]
            elif kind is cst.NamedExpr:
                bind = self.flow.bind
                work.append((None, lambda node=node, held=held: bind(node.target, held)))  # type: ignore[misc]  # noqa: B023
                work.append((node.value, held))  # type: ignore[attr-defined]
            elif kind in _COMPREHENSIONS:
                self.comprehension(node, held)  # type: ignore[arg-type]
            elif kind not in SCOPE_TYPES:  # nested functions and classes have their own analysis
                work.extend((child, held) for child in reversed(list(iter_children(node))))

    def if_expression(self, node: cst.IfExp, state: _State, work: list[_Work]) -> None:
        """The test, then both branches from the state after it; they merge afterwards."""
        values = self.flow.values

        def branch() -> None:
            body, orelse = state.copy(), state.copy()

            def merge() -> None:
                merged = _merge([body, orelse], values)
                state.env, state.used = merged.env, merged.used  # type: ignore[union-attr]

            work.extend([(None, merge), (node.orelse, orelse), (node.body, body)])

        work.extend([(None, branch), (node.test, state)])

    def call(self, node: cst.Call, state: _State, index: object, work: list[_Work]) -> None:
        """The callee and the arguments (a `jax.random` call's key last), then what the call consumes."""
        flow = self.flow
        callee = flow.resolve(node.func)
        key_arg = None
        if callee is not None and callee.startswith(RANDOM):
            name = callee[len(RANDOM) :]
            if name not in NOT_CONSUMING:
                key_arg = next((a for a in node.args if a.keyword is not None and a.keyword.value == "key"), None)
                if key_arg is None and node.args and node.args[0].keyword is None and not node.args[0].star:
                    key_arg = node.args[0]
        work.append((None, lambda: self.consume(node, state, index, callee, key_arg)))
        if key_arg is not None:
            work.append((key_arg.value, state))
        work.extend((arg.value, state) for arg in reversed(node.args) if arg is not key_arg)
        work.append((node.func, state))

    def consume(
        self, node: cst.Call, state: _State, index: object, callee: str | None, key_arg: cst.Arg | None
    ) -> None:
        """What a call consumes: its key (`jax.random`), the keys a same-file helper draws from, or
        every argument it is passed (unless it only inspects them)."""
        flow = self.flow
        func = called_function(node.func, flow.resolve)  # `jax.jit(f)(key)` calls `f(key)`
        drawn = None
        if key_arg is None and flow.helper is not None and (callee is None or func is not node.func):
            drawn = flow.helper(func)
        if key_arg is not None:
            kind = "split" if callee == RANDOM + "split" else "random"
            use = Use(key_arg.value, kind, callee, index if kind == "split" else None)  # type: ignore[arg-type]
            flow.consume(key_arg.value, use, state)
        elif drawn is not None:
            label, positions, keywords = drawn
            positional = [a for a in node.args if a.keyword is None and not a.star]
            for position, arg in enumerate(positional):
                kind = "random" if position in positions else "call"
                flow.consume(arg.value, Use(arg.value, kind, label), state)
            for arg in node.args:
                if arg.keyword is not None:
                    kind = "random" if arg.keyword.value in keywords else "call"
                    flow.consume(arg.value, Use(arg.value, kind, label), state)
        elif not inspects(callee):
            label = callee or code_of(node.func)
            for arg in node.args:
                if not arg.star:
                    flow.consume(arg.value, Use(arg.value, "call", label), state)

    def comprehension(self, node: cst.BaseComp, state: _State) -> None:
        """Like a loop: the clauses and the element run twice, the second time from what the first
        pass feeds back; the comprehension's own variables do not leak out."""
        flow = self.flow
        clauses = []
        clause: cst.CompFor | None = node.for_in
        while clause is not None:
            clauses.append(clause)
            clause = clause.inner_for_in
        flow.expr(clauses[0].iter, state)
        bound = {name for c in clauses for name in bound_names(c.target)}
        saved = {name: state.env.get(name) for name in bound}
        head = state.copy()
        for second in (False, True):
            flow.in_second_pass += second
            entry = head.copy()
            for position, clause in enumerate(clauses):
                if position:
                    flow.expr(clause.iter, entry)
                flow.bind(clause.target, entry)
                for condition in clause.ifs:
                    flow.expr(condition.test, entry)
            if isinstance(node, cst.DictComp):
                flow.expressions.run([node.key, node.value], entry)
            else:
                flow.expr(node.elt, entry)  # type: ignore[attr-defined]
            flow.in_second_pass -= second
            head = _merge([head, entry], flow.values) or head
        for name, value in saved.items():
            if value is None:
                head.env.pop(name, None)
            else:
                head.env[name] = value
        state.env, state.used = head.env, head.used


def _runs_at_least_once(node: cst.For | cst.While, resolve: Resolver) -> bool:
    if (
        not isinstance(node, cst.For)
        or not isinstance(node.iter, cst.Call)
        or resolve(node.iter.func) != "builtins.range"
    ):
        return False
    bounds = []
    for arg in node.iter.args:
        value = arg.value
        negative = isinstance(value, cst.UnaryOperation) and isinstance(value.operator, cst.Minus)
        if negative:
            value = value.expression
        if arg.keyword is not None or not isinstance(value, cst.Integer):
            return False
        bounds.append(-int(value.value, 0) if negative else int(value.value, 0))
    return 1 <= len(bounds) <= 3 and (len(bounds) < 3 or bounds[2] != 0) and len(range(*bounds)) > 0


def _merge(states: Iterable[_State | None], values: itertools.count) -> _State | None:
    """The state after paths meet: a variable holding different values on different paths gets a new
    value, consumed if it was consumed on any path."""
    live = [s for s in states if s is not None]
    if not live:
        return None
    if len(live) == 1:
        return live[0].copy()
    used: dict[int, Use] = {}
    for s in live:
        for value, use in s.used.items():
            used.setdefault(value, use)
    env: dict[str, int] = {}
    for name in dict.fromkeys(name for s in live for name in s.env):
        held = {s.env.get(name) for s in live}
        if len(held) == 1:
            env[name] = held.pop()  # type: ignore[assignment]
            continue
        merged = next(values)
        env[name] = merged
        first = next((s.used[s.env[name]] for s in live if s.env.get(name) in s.used), None)
        if first is not None:
            used[merged] = first
    return _State(env, used)
