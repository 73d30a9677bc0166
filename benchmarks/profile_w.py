"""Where a configuration (w) training step spends its time: each piece compiled alone, against its bound.

Configuration (w) is PyTorch word_language_model's default model (vocab 33,278, embed 200, hidden 200,
2 LSTM layers, batch 20, seq 35: 700 tokens per step), trained with Adam through `purelm.make_train_step`.
Each piece runs jitted on its own, at the step's shapes, in alternating rounds in one process; the table
gives the median wall time and the lower bound that piece cannot beat on this machine: its matmul FLOPs
at the measured peak of one large float32 matmul, or its compulsory memory traffic at the measured
bandwidth of a large in-place update (`bound` is the larger of the two). `CPU ms` is the process's CPU
time (both cores) per call: on a shared machine it moves less than the wall time.

The last line is the floor of a step with the kernels XLA has on this machine: the output layer's three
matmuls (logits, `dh`, `dW`) for each of `_xent`'s chunks, the LSTM layers and an in-place Adam update,
each at its best time. Everything else a step does (the softmax passes, the weight-gradient sums, copies)
comes on top of it.

    python benchmarks/profile_w.py --repeats 5 [--keep-freed-memory]
    python benchmarks/profile_w.py --repeats 5 --tied
    python benchmarks/profile_w.py --trace 25      # the 25 slowest operations inside one step (JAX profiler)
"""

import argparse
import math
import os
import statistics
import time

import equinox as eqx
import jax
import jax.numpy as jnp
import optax

import purelm
from purelm._model import _fused, _xent
from purelm.training import _steps

W = {"vocab": 33278, "embed": 200, "hidden": 200, "layers": 2, "batch": 20, "seq": 35}


def timed(fn, *args):
    """(wall seconds, process CPU seconds) of one call."""
    wall, cpu = time.perf_counter(), time.process_time()
    jax.block_until_ready(fn(*args))
    return time.perf_counter() - wall, time.process_time() - cpu


class Peaks:
    """Float32 matmul GFLOP/s (2048^3) and memory GB/s (read + write of 128 MB, in place, so that no fresh
    pages are faulted in), the best seen over every round: on a shared machine a single try under-reads."""

    def __init__(self):
        self.a = jax.random.normal(jax.random.key(0), (2048, 2048), jnp.float32)
        self.matmul = jax.jit(lambda x: x @ x)
        self.scale = jax.jit(lambda x: x * 1.0000001, donate_argnums=0)
        self.big = self.scale(jnp.ones(32 * 2**20, jnp.float32))
        self.matmul(self.a).block_until_ready()
        self.gflops = self.gbs = 0.0

    def measure(self):
        self.gflops = max(self.gflops, 2 * 2048**3 / timed(self.matmul, self.a)[0] / 1e9)
        start = time.perf_counter()
        self.big = self.scale(self.big)
        self.big.block_until_ready()
        self.gbs = max(self.gbs, 2 * self.big.nbytes / (time.perf_counter() - start) / 1e9)


CHUNK_LOGITS = "head chunk: logits (h @ W.T)"
CHUNK_DH = "head chunk: dh (dlogits @ W)"
CHUNK_DW = "head chunk: dW (dlogits.T @ h)"
LSTM = "LSTM layers + embedding, fwd+bwd"
ADAM_IN_PLACE = "Adam update, in place (donated buffers)"


def head_chunks(tokens, vocab):
    """(number of chunks, tokens per chunk) of `_xent.fused_token_log_probs` at the default chunk size."""
    count = _xent.chunk_count(tokens, vocab)
    return count, math.ceil(tokens / count)


def floor_ms(best, tokens, vocab):
    """The least a step can take with these kernels: every chunk's three head matmuls, the LSTM layers and an
    in-place Adam update, each at its best time (ms); None unless all of them were timed."""
    needed = (CHUNK_LOGITS, CHUNK_DH, CHUNK_DW, LSTM, ADAM_IN_PLACE)
    if not all(name in best for name in needed):
        return None
    count, _ = head_chunks(tokens, vocab)
    return count * (best[CHUNK_LOGITS] + best[CHUNK_DH] + best[CHUNK_DW]) + best[LSTM] + best[ADAM_IN_PLACE]


def pieces(tied):
    """name -> (function, args, matmul flops, compulsory bytes)."""
    c = W
    tokens = c["batch"] * c["seq"]
    k = jax.random.split(jax.random.key(0), 9)
    vocab, hidden, embed = c["vocab"], c["hidden"], c["embed"]
    f32 = 4
    h = jax.random.normal(k[0], (tokens, hidden)) * 0.5
    weight = jax.random.normal(k[1], (vocab, hidden)) * 0.05
    bias = jnp.zeros(vocab)
    targets = jax.random.randint(k[2], (tokens,), 0, vocab)
    head_flops = 3 * 2 * tokens * hidden * vocab
    head_bytes = 2 * weight.nbytes  # read W, write dW
    out = {}

    def head_loss(log_probs):
        return jax.jit(jax.value_and_grad(lambda h, w, b: -jnp.mean(log_probs(h, w, b, targets)), argnums=(0, 1, 2)))

    out["head: logits matmul alone (h @ W.T)"] = (
        jax.jit(lambda h, w: h @ w.T),
        (h, weight),
        head_flops / 3,
        weight.nbytes,
    )
    # The three matmuls of one chunk of `_xent`'s fused head, with its chunk size, in its layouts: the least
    # a chunk costs with XLA's kernels (see `floor_ms`).
    _count, size = head_chunks(tokens, vocab)
    dlogits = jax.random.normal(k[8], (size, vocab)) * 1e-3
    chunk_flops = 2 * size * hidden * vocab
    out[CHUNK_LOGITS] = (jax.jit(lambda h, w: h @ w.T), (h[:size], weight), chunk_flops, weight.nbytes)
    out[CHUNK_DH] = (jax.jit(lambda d, w: d @ w), (dlogits, weight), chunk_flops, weight.nbytes)
    out[CHUNK_DW] = (
        jax.jit(lambda d, h: jax.lax.dot_general(d, h, (((0,), (0,)), ((), ())))),
        (dlogits, h[:size]),
        chunk_flops,
        weight.nbytes,
    )
    out["head: plain autodiff (materialised)"] = (
        head_loss(_xent.plain_token_log_probs),
        (h, weight, bias),
        head_flops,
        head_bytes,
    )
    for chunk in (175, 350, 700):
        fn = lambda h, w, b, t, chunk=chunk: _xent.fused_token_log_probs(h, w, b, t, chunk=chunk)
        out[f"head: _xent fused, chunk {chunk}"] = (head_loss(fn), (h, weight, bias), head_flops, head_bytes)
    out["head: _xent default (linear_log_probs)"] = (
        head_loss(_xent.linear_log_probs),
        (h, weight, bias),
        head_flops,
        head_bytes,
    )

    # The two LSTM layers with the embedding gather, forward + backward (cotangent on every output).
    model = purelm.LSTMLM(vocab, embed, hidden, num_layers=c["layers"], key=k[3])
    params = [(cell.weight_ih, cell.weight_hh, cell.bias) for cell in model.cells]
    batch = jax.random.randint(k[4], (c["batch"], c["seq"]), 0, vocab)
    h0 = c0 = jnp.zeros((c["batch"], c["layers"], hidden))
    dhs = jax.random.normal(k[5], (c["seq"], c["batch"], hidden))

    def layers_loss(embedding, params):
        hs, (_h, _cc) = _fused.lstm_lm_window(embedding, params, batch, h0, c0)
        return jnp.sum(hs * dhs)

    lstm_params = 4 * hidden * (embed + hidden) + 4 * hidden * (2 * hidden)
    lstm_flops = 6 * tokens * lstm_params
    out[LSTM] = (
        jax.jit(jax.grad(layers_loss, argnums=(0, 1))),
        (model.embedding, params),
        lstm_flops,
        2 * model.embedding.nbytes,
    )
    out["LSTM layers only (params grad)"] = (
        jax.jit(jax.grad(layers_loss, argnums=1)),
        (model.embedding, params),
        lstm_flops,
        0,
    )
    xs = jax.random.normal(k[6], (c["seq"], c["batch"], 4 * hidden))
    out["one layer's recurrence fwd+bwd"] = (
        jax.jit(
            jax.grad(lambda w, x: jnp.sum(_fused.lstm_recurrence(w, x, h0[:, 0], c0[:, 0])[0] * dhs), argnums=(0, 1))
        ),
        (params[1][1], xs),
        6 * tokens * 4 * hidden * hidden,
        0,
    )
    emb_ct = jax.random.normal(k[7], (c["seq"], c["batch"], embed))
    # The batch and the cotangent are arguments: closed over, XLA would fold the whole gradient (which does not
    # depend on the embedding's values) into a constant at compile time.
    out["embedding gather + scatter-add grad"] = (
        jax.jit(jax.grad(lambda e, tokens, ct: jnp.sum(e[tokens.T] * ct))),
        (model.embedding, batch, emb_ct),
        0,
        2 * model.embedding.nbytes,
    )

    # Adam over the whole model (two [33278, 200] matrices when untied): read p, g, m, v; write p, m, v.
    optimizer = optax.adam(1e-3)
    model = purelm.LSTMLM(
        vocab,
        embed,
        hidden,
        num_layers=c["layers"],
        key=k[3],
        **({"tie_embeddings": True, "output_bias": True} if tied else {}),
    )
    p = eqx.filter(model, eqx.is_array)
    opt_state = optimizer.init(p)
    grads = jax.tree.map(lambda x: x * 0.01, p)
    n_params = sum(x.size for x in jax.tree.leaves(p))

    def adam(p, opt_state, grads):
        updates, opt_state = optimizer.update(grads, opt_state, p)
        return optax.apply_updates(p, updates), opt_state

    out["Adam update (optax.adam + apply_updates)"] = (jax.jit(adam), (p, opt_state, grads), 0, 7 * f32 * n_params)
    # The same update written into its inputs' buffers (donated): what the fresh [33278, 200] outputs of
    # a functional step cost (every page of them is faulted in and zeroed by the kernel on each call).
    donated = Chained(jax.jit(adam, donate_argnums=(0, 1)), (jax.tree.map(jnp.copy, p), optimizer.init(p)), (grads,))
    out[ADAM_IN_PLACE] = (donated, (), 0, 7 * f32 * n_params)

    states = purelm.batch_initial_state(model, c["batch"])
    whole_flops = 6 * tokens * (lstm_params + hidden * vocab)
    whole_bytes = 7 * f32 * n_params + head_bytes
    # Chained as in training: each call starts from the previous call's model, Adam state and states.
    single = Chained(purelm.make_train_step(optimizer), (model, opt_state), (batch,), carry_last=states)
    out["whole step (make_train_step)"] = (single, (), whole_flops, whole_bytes)
    batches = jnp.stack([batch] * 10)
    multi = Chained(purelm.make_train_steps(optimizer), (model, opt_state), (batches,), carry_last=states, per_call=10)
    out["whole step (make_train_steps, 10 per call)"] = (multi, (), whole_flops, whole_bytes)
    return out


class Chained:
    """A call that continues from its previous outputs: `fn(*carry, *fixed[, last])` returns the new carry
    (and the new `last`) first. `per_call` steps per call: the timings are divided by it."""

    def __init__(self, fn, carry, fixed, carry_last=None, per_call=1):
        self.fn, self.carry, self.fixed, self.last, self.per_call = fn, carry, fixed, carry_last, per_call

    def __call__(self):
        args = (*self.carry, *self.fixed) + (() if self.last is None else (self.last,))
        out = jax.block_until_ready(self.fn(*args))
        self.carry = tuple(out[: len(self.carry)])
        if self.last is not None:
            self.last = out[len(self.carry)]
        return out


def trace_step(tied, top, calls=3):
    """Per-operation time of the compiled (w) train step, from JAX's profiler: the thunks XLA CPU runs
    (fusions, dots, loops), each with the JAX operation it came from, summed over the runtime's threads."""
    import collections
    import re
    import tempfile

    from jax.profiler import ProfileData

    c = W
    model = purelm.LSTMLM(
        c["vocab"],
        c["embed"],
        c["hidden"],
        num_layers=c["layers"],
        key=jax.random.key(0),
        **({"tie_embeddings": True, "output_bias": True} if tied else {}),
    )
    optimizer = optax.adam(1e-3)
    params, static = eqx.partition(model, eqx.is_array)
    update = _steps._update(optimizer, purelm.batch_loss)

    def step(params, opt_state, batch, states):
        model, opt_state, states, loss = update(eqx.combine(params, static), opt_state, batch, states)
        return eqx.filter(model, eqx.is_array), opt_state, states, loss

    args = [
        params,
        optimizer.init(params),
        jax.random.randint(jax.random.key(1), (c["batch"], c["seq"]), 0, c["vocab"]),
        purelm.batch_initial_state(model, c["batch"]),
    ]
    compiled = jax.jit(step).lower(*args).compile()
    origin = {}
    for line in compiled.as_text().splitlines():
        found = re.match(r"\s*(?:ROOT )?%?([\w.-]+) = (\S+) .*?op_name=\"([^\"]*)\"", line)
        if found:
            origin[found.group(1)] = (found.group(2).split("{")[0], found.group(3).removeprefix("jit(step)/"))

    def run():
        out = jax.block_until_ready(compiled(*args))
        args[0], args[1], args[3] = out[0], out[1], out[2]

    run()
    with tempfile.TemporaryDirectory() as directory:
        start = time.perf_counter()
        with jax.profiler.trace(directory):
            for _ in range(calls):
                run()
        wall = (time.perf_counter() - start) / calls
        (path,) = [os.path.join(d, f) for d, _, fs in os.walk(directory) for f in fs if f.endswith(".xplane.pb")]
        profile = ProfileData.from_file(path)
    spent = collections.Counter()
    for plane in profile.planes:
        for line in plane.lines:
            if "XLAEigen" in line.name:
                for event in line.events:
                    if not event.name.startswith(("ThunkExecutor", "Threadpool")):
                        spent[event.name] += event.duration_ns / 1e6 / calls
    print(
        f"one (w) train step{', tied' if tied else ''}: {wall * 1e3:.0f} ms wall under the profiler; "
        f"{sum(spent.values()):.0f} ms of thunk time on XLA's threads; load average {os.getloadavg()[0]:.2f}"
    )
    print(f"{'ms/step':>8}  {'thunk':<28}{'shape':<22}from")
    for name, ms in spent.most_common(top):
        shape, op = origin.get(name, ("", ""))
        print(f"{ms:>8.1f}  {name:<28}{shape:<22}{op[-60:]}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="alternating rounds (one call per piece per round)")
    parser.add_argument("--tied", action="store_true", help="tie the head to the embedding")
    parser.add_argument("--only", help="run only pieces whose name contains this")
    parser.add_argument("--trace", type=int, metavar="N", help="instead: the N slowest operations of one train step")
    parser.add_argument(
        "--keep-freed-memory", action="store_true", help="call purelm.keep_freed_memory() first, as `purelm train` does"
    )
    args = parser.parse_args()
    if args.keep_freed_memory:
        purelm.keep_freed_memory()
    if args.trace:
        trace_step(args.tied, args.trace)
        return
    load = os.getloadavg()[0]
    peaks = Peaks()
    table = pieces(args.tied)
    if args.only:
        table = {n: v for n, v in table.items() if args.only in n}
    times = {name: [] for name in table}
    for fn, fargs, _, _ in table.values():
        timed(fn, *fargs)
    for _ in range(args.repeats):
        for _ in range(3):
            peaks.measure()
        for name, (fn, fargs, _, _) in table.items():
            wall, cpu = timed(fn, *fargs)
            per_call = getattr(fn, "per_call", 1)
            times[name].append((wall / per_call, cpu / per_call))
    gflops, gbs = peaks.gflops, peaks.gbs
    print(
        f"jax {jax.__version__}, {len(os.sched_getaffinity(0))} cores; float32 matmul peak {gflops:.0f} GFLOP/s, "
        f"memory {gbs:.1f} GB/s (best seen){'; tied head' if args.tied else ''}"
    )
    print(f"{'piece':<45}{'median ms':>10}{'min ms':>9}{'CPU ms':>8}{'GFLOP':>7}{'MB':>6}{'bound ms':>9}{'x bound':>8}")
    for name, (_, _, flops, nbytes) in table.items():
        med = statistics.median(wall for wall, _ in times[name]) * 1e3
        best = min(wall for wall, _ in times[name]) * 1e3
        cpu = statistics.median(cpu for _, cpu in times[name]) * 1e3
        bound = max(flops / gflops / 1e9, nbytes / gbs / 1e9) * 1e3
        print(
            f"{name:<45}{med:>10.1f}{best:>9.1f}{cpu:>8.0f}{flops / 1e9:>7.2f}{nbytes / 1e6:>6.0f}{bound:>9.1f}"
            f"{med / bound if bound else float('nan'):>8.2f}"
        )
    print(
        f"load average (1 min) before {load:.2f}, after {os.getloadavg()[0]:.2f}; {args.repeats} alternating rounds; "
        "bound: matmul FLOPs at the matmul peak or compulsory bytes at the memory bandwidth, the larger"
        + ("; keep_freed_memory()" if args.keep_freed_memory else "")
    )
    tokens = W["batch"] * W["seq"]
    floor = floor_ms(
        {name: min(wall for wall, _ in samples) * 1e3 for name, samples in times.items()}, tokens, W["vocab"]
    )
    if floor is not None:
        count, size = head_chunks(tokens, W["vocab"])
        print(
            f"floor with these kernels: {count} head chunks of {size} tokens x (logits + dh + dW) + LSTM layers + Adam in "
            f"place, each at its best: {floor:.0f} ms per step, {tokens / floor * 1e3:,.0f} tokens/s"
        )


if __name__ == "__main__":
    main()
