"""Per-call cost of a compiled train step: `eqx.filter_jit` against purelm's own `filter_jit`
(`purelm/_jit.py`, what `make_train_step` and `make_train_steps` use) and a bare `jax.jit`.

    python benchmarks/dispatch_overhead.py --rounds 5 --steps 20

Configuration (b) of benchmarks/train_throughput.py (`LSTMLM(65, 32, 128)`, batch 16 x 32, Adam), one
step per call, compiled three ways:

- `eqx.filter_jit`: what `make_train_step` returned before `purelm/_jit.py`;
- `make_train_step`: purelm's `filter_jit`;
- `jax.jit`: the same update over the arrays alone, the model split once with `eqx.partition` outside
  the loop: the floor no wrapper can beat.

Each is timed twice: "sync", waiting for every step (as benchmarks/train_throughput.py does), and
"async", waiting once after `--steps` steps, so Python may prepare a call while the one before runs
(`eqx.filter_jit` itself waits for each call). "trivial" calls a function that does almost no work
(it negates its arguments) with the same argument and result trees, synchronously: what is left is
the wrappers' Python work and JAX's dispatch.
Finally the pieces of that work, each timed alone on `(model, opt_state, batch, states)`.

The candidates run in alternating rounds inside one process, so a busy machine slows them alike; each
cell is the median over rounds of the mean time per call.
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
from purelm import _jit
from purelm._train import _update

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
    """Mean seconds per call over `calls` calls (after one untimed call); the carry after them."""
    carry = jax.block_until_ready(call(carry))
    start = time.perf_counter()
    for _ in range(calls):
        carry = call(carry)
        if sync:
            jax.block_until_ready(carry)
    jax.block_until_ready(carry)
    return (time.perf_counter() - start) / calls, carry


def pieces(model, opt_state, batch, states, repeats):
    """Microseconds per call of each piece of a wrapper's work, on the step's arguments."""
    args = ((model, opt_state, batch, states), {})
    leaves, treedef = jax.tree.flatten(args)
    dynamic, static = _jit._split(leaves)
    work = {
        "eqx.partition(args, eqx.is_array)": lambda: eqx.partition(args, eqx.is_array),
        "jax.tree.flatten(args)": lambda: jax.tree.flatten(args),
        "split leaves (purelm._jit._split)": lambda: _jit._split(leaves),
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


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=20, help="train steps per candidate and round")
    parser.add_argument("--trivial-calls", type=int, default=200, help="trivial calls per candidate and round")
    args = parser.parse_args()

    optimizer, model, opt_state, batch, states = setup()
    steps, trivial = candidates(optimizer, model, opt_state, batch, states)
    carries = {("step", name): carry for name, (_, carry) in steps.items()}
    carries.update({("trivial", name): carry for name, (_, carry) in trivial.items()})
    times = {key: [] for key in [*((kind, name) for kind in ("sync", "async", "trivial") for name in steps)]}
    names = list(steps)
    for round_ in range(args.rounds):
        # Each round starts with a different candidate, so none always runs right after another.
        order = names[round_ % len(names) :] + names[: round_ % len(names)]
        for name in order:
            call = steps[name][0]
            for kind in ("sync", "async"):
                seconds, carries["step", name] = time_calls(call, carries["step", name], args.steps, kind == "sync")
                times[kind, name].append(seconds)
        for name in order:
            call = trivial[name][0]
            seconds, carries["trivial", name] = time_calls(call, carries["trivial", name], args.trivial_calls, True)
            times["trivial", name].append(seconds)

    print(f"config (b): LSTMLM(65, 32, 128), batch 16 x 32, Adam; {args.rounds} rounds x {args.steps} steps; "
          f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}; {os.cpu_count()} CPUs")
    print(f"{'per call':34} {'sync step':>11} {'async step':>11} {'trivial':>10} {'sync vs jax.jit':>16}")
    floor = statistics.median(times["sync", "jax.jit (arrays only)"])
    for name in steps:
        sync, asynchronous, nothing = (statistics.median(times[kind, name]) for kind in ("sync", "async", "trivial"))
        print(f"{name:34} {sync * 1e3:8.3f} ms {asynchronous * 1e3:8.3f} ms {nothing * 1e6:7.1f} us "
              f"{(sync - floor) * 1e6:+13.0f} us")
    print()
    print(f"{'piece of the work, per call':40} {'time':>10}")
    for name, value in pieces(model, opt_state, batch, states, repeats=200).items():
        print(f"{name:40} {value:>7.1f} us" if isinstance(value, float) else f"{name:40} {value:>10}")


if __name__ == "__main__":
    main()
