"""Per-call cost of a compiled train step: `eqx.filter_jit` against purelm's own `filter_jit`
(`purelm/_runtime/_jit.py`, what `make_train_step` and `make_train_steps` use) and a bare `jax.jit`.

    python benchmarks/dispatch_overhead.py --rounds 5 --steps 20

Configuration (b) of benchmarks/train_throughput.py (`LSTMLM(65, 32, 128)`, batch 16 x 32, Adam), one
step per call, compiled three ways:

- `eqx.filter_jit`: what `make_train_step` returned before `purelm/_runtime/_jit.py`;
- `make_train_step`: purelm's `filter_jit`;
- `jax.jit`: the same update over the arrays alone, the model split once with `eqx.partition` outside
  the loop: the floor no wrapper can beat.

Each is timed twice: "sync", waiting for every step (as `purelm, 1 per call, waiting` does in
benchmarks/train_throughput.py), and "async", waiting once after `--steps` steps, so Python may prepare
a call while the one before runs (`eqx.filter_jit` itself waits for each call). "trivial" calls a
function that does almost no work (it negates its arguments) with the same argument and result trees,
synchronously: what is left is the wrappers' Python work and JAX's dispatch.
Finally the pieces of that work, each timed alone on `(model, opt_state, batch, states)`.

The candidates run in alternating rounds inside one process, so a busy machine slows them alike; each
cell is the median over rounds of the mean time per call, and in parentheses the best round's (on a
shared machine, the nearer to what the code itself costs). CPU columns are this process's CPU time per
call (all its threads), which other processes inflate less than the wall time.
"""

import argparse
import os
import statistics
import time

import equinox as eqx
import jax
import numpy as np
import optax

import purelm
from purelm._runtime import _jit
from purelm.training._steps import _update

CONFIG_B = {"vocab": 65, "embed": 32, "hidden": 128, "batch": 16, "seq": 32}


def setup():
    config = CONFIG_B
    model = purelm.LSTMLM(config["vocab"], config["embed"], config["hidden"], num_layers=1, key=jax.random.key(0))
    optimizer = optax.adam(1e-3)
    opt_state = optimizer.init(eqx.filter(model, eqx.is_array))
    rng = np.random.default_rng(0)
    batch = jax.numpy.asarray(rng.integers(0, config["vocab"], (config["batch"], config["seq"])), jax.numpy.int32)
    states = purelm.batch_initial_state(model, config["batch"])
    return optimizer, model, opt_state, batch, states


def candidates(optimizer, model, opt_state, batch, states):
    """name -> (call, carry): `call(carry)` makes one step and returns the next carry."""
    update = _update(optimizer, purelm.batch_loss)
    params, static = eqx.partition(model, eqx.is_array)

    @jax.jit
    def bare(params, opt_state, batch, states):
        model, opt_state, states, loss = update(eqx.combine(params, static), opt_state, batch, states)
        return eqx.filter(model, eqx.is_array), opt_state, states, loss

    def wrapped(step):
        def call(carry):
            model, opt_state, states, _ = step(carry[0], carry[1], batch, carry[2])
            return model, opt_state, states

        return call

    def bare_call(carry):
        params, opt_state, states, _ = bare(carry[0], carry[1], batch, carry[2])
        return params, opt_state, states

    steps = {
        "eqx.filter_jit": (wrapped(eqx.filter_jit(update)), (model, opt_state, states)),
        "make_train_step": (wrapped(purelm.make_train_step(optimizer)), (model, opt_state, states)),
        "jax.jit (arrays only)": (bare_call, (params, opt_state, states)),
    }

    def nothing(model, opt_state, batch, states):
        # Negated, not returned as they are: JAX forwards an output that is an input without running the
        # program, on a slower path that would hide the difference between the wrappers.
        return jax.tree.map(lambda x: -x, (model, opt_state, states))

    trivial = {
        "eqx.filter_jit": (wrapped_trivial(eqx.filter_jit(nothing), batch), (model, opt_state, states)),
        "make_train_step": (wrapped_trivial(_jit.filter_jit(nothing), batch), (model, opt_state, states)),
        "jax.jit (arrays only)": (wrapped_trivial(jax.jit(nothing), batch), (params, opt_state, states)),
    }
    return steps, trivial


def wrapped_trivial(function, batch):
    def call(carry):
        return function(carry[0], carry[1], batch, carry[2])

    return call


def time_calls(call, carry, calls, sync):
    """Mean (wall, CPU) seconds per call over `calls` calls (after one untimed call); the carry after them.

    The CPU time is this process's, all threads: other processes on a shared machine inflate it less
    than the wall time."""
    carry = jax.block_until_ready(call(carry))
    start, start_cpu = time.perf_counter(), time.process_time()
    for _ in range(calls):
        carry = call(carry)
        if sync:
            jax.block_until_ready(carry)
    jax.block_until_ready(carry)
    return ((time.perf_counter() - start) / calls, (time.process_time() - start_cpu) / calls), carry


def pieces(model, opt_state, batch, states, repeats):
    """Microseconds per call of each piece of a wrapper's work, on the step's arguments."""
    args = ((model, opt_state, batch, states), {})
    leaves, treedef = jax.tree.flatten(args)
    dynamic, static = _jit._split(leaves)
    work = {
        "eqx.partition(args, eqx.is_array)": lambda: eqx.partition(args, eqx.is_array),
        "jax.tree.flatten(args)": lambda: jax.tree.flatten(args),
        "split leaves (purelm._runtime._jit._split)": lambda: _jit._split(leaves),
        "hash((treedef, static leaves))": lambda: hash((treedef, static)),
        "jax.tree.unflatten(treedef, leaves)": lambda: jax.tree.unflatten(treedef, leaves),
    }
    out = {}
    for name, function in work.items():
        start = time.perf_counter()
        for _ in range(repeats):
            function()
        out[name] = (time.perf_counter() - start) / repeats * 1e6
    out["(leaves: arrays / all)"] = f"{len(dynamic)} / {len(leaves)}"
    return out


def alternate(calls, carries, rounds, per_round, sync):
    """name -> mean seconds per call in each round. The candidates alternate, each round starting with
    a different one, so none always runs right after another."""
    names = list(calls)
    times = {name: [] for name in names}
    for round_ in range(rounds):
        for name in names[round_ % len(names) :] + names[: round_ % len(names)]:
            seconds, carries[name] = time_calls(calls[name], carries[name], per_round, sync)
            times[name].append(seconds)
    return times


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="rounds of train steps")
    parser.add_argument("--steps", type=int, default=20, help="train steps per candidate and round")
    parser.add_argument("--trivial-rounds", type=int, default=40)
    parser.add_argument("--trivial-calls", type=int, default=25, help="trivial calls per candidate and round")
    args = parser.parse_args()

    optimizer, model, opt_state, batch, states = setup()
    steps, trivial = candidates(optimizer, model, opt_state, batch, states)
    step_calls = {name: call for name, (call, _) in steps.items()}
    step_carries = {name: carry for name, (_, carry) in steps.items()}
    sync = alternate(step_calls, step_carries, args.rounds, args.steps, sync=True)
    asynchronous = alternate(step_calls, step_carries, args.rounds, args.steps, sync=False)
    nothing = alternate(
        {name: call for name, (call, _) in trivial.items()},
        {name: carry for name, (_, carry) in trivial.items()},
        args.trivial_rounds,
        args.trivial_calls,
        sync=True,
    )

    print(
        f"config (b): LSTMLM(65, 32, 128), batch 16 x 32, Adam; steps: {args.rounds} rounds x {args.steps}, "
        f"trivial: {args.trivial_rounds} rounds x {args.trivial_calls}; load average "
        f"{' '.join(f'{x:.2f}' for x in os.getloadavg())} on {os.cpu_count()} CPUs"
    )
    print("per call: wall time, median over rounds (best round), and CPU time (median)")
    print(
        f"{'':22} {'sync step: wall (best)':>23} {'CPU':>8} {'async wall':>11} {'trivial: wall (best)':>22}"
        f" {'CPU':>8} {'trivial CPU - jax.jit':>22}"
    )

    def wall(times, name, scale):
        return statistics.median(t[0] for t in times[name]) * scale, min(t[0] for t in times[name]) * scale

    def cpu(times, name, scale):
        return statistics.median(t[1] for t in times[name]) * scale

    for name in steps:
        print(
            f"{name:22} {'{:8.3f} ms ({:6.3f})'.format(*wall(sync, name, 1e3)):>23} {cpu(sync, name, 1e3):5.2f} ms"
            f" {wall(asynchronous, name, 1e3)[0]:8.3f} ms {'{:7.1f} us ({:6.1f})'.format(*wall(nothing, name, 1e6)):>22}"
            f" {cpu(nothing, name, 1e6):5.0f} us"
            f" {cpu(nothing, name, 1e6) - cpu(nothing, 'jax.jit (arrays only)', 1e6):+19.0f} us"
        )
    print()
    print(f"{'piece of the work, per call':40} {'time':>10}")
    for name, value in pieces(model, opt_state, batch, states, repeats=200).items():
        print(f"{name:40} {value:>7.1f} us" if isinstance(value, float) else f"{name:40} {value:>10}")


if __name__ == "__main__":
    main()
