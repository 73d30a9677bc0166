"""Training throughput: purelm against torch.nn.LSTM and the tutorial's per-token PyTorch model.

One step is forward + backward + Adam update on a batch of windows, with the recurrent state carried
from step to step (truncated BPTT). The candidates run in alternating rounds inside one process, so a
busy machine slows them alike. In each round every candidate makes `--steps` consecutive steps as a
training loop makes them, timed together; the table gives the median over the rounds of the time per
step. purelm runs one step per call (`make_train_step`) and 10 steps per call (`make_train_steps`, as
`purelm train` does by default). Its calls return before they have finished (JAX's asynchronous
dispatch), and like `purelm train` the loop waits for the call before the last one, so Python prepares
the next step while the current one runs; `purelm, 1 per call, waiting` waits for every step before
making the next (a loop that reads the loss after each step), as torch on a CPU always does.

    python benchmarks/train_throughput.py --config all [--skip-tutorial] [--no-memory]
    python benchmarks/train_throughput.py --config w --steps 10 --repeats 3 [--tied] [--keep-freed-memory]

`--keep-freed-memory` calls `purelm.keep_freed_memory()` first, as `purelm train` does: glibc's malloc
then reuses freed blocks instead of unmapping them (purelm/_runtime/_host_memory.py). The setting is process-wide,
so every candidate, torch's included, runs with it: it is an allocator setting any process can make, not
an advantage of one framework.

Configuration (w) is PyTorch word_language_model's default model (33,278-word Wikitext-2 vocabulary,
2 layers of 200); its torch side is that example's model (embedding, nn.LSTM, nn.Linear decoder, tied
to the embedding with `--tied`, which keeps the decoder's bias as the example does), and its purelm
side gets the same structure (`tie_embeddings=True, output_bias=True`). For (w) the script also prints
the compiled peak temporary memory of the output layer + loss and its gradient (XLA's memory analysis
of the compiled program), fused (`purelm._model._xent`, the default) against the materialised logits.

Columns: tokens/s (median over the rounds, and the best round), ratio of the medians to torch.nn.LSTM,
the first call's wall time (for purelm: tracing + XLA compilation + that call's steps), peak memory
(growth of the process's resident set size, sampled every 2 ms while building the model, compiling and
running a few steps, in a fresh subprocess per candidate, above the RSS right after imports; on a GPU,
the accelerator's own peak allocation), and GFLOP/s: the nominal training work 6 x (matmul parameters)
per token, the same count for every candidate, next to the measured peak of one large float32 matmul on
this machine.
"""

import argparse
import os
import platform
import statistics
import subprocess
import sys
import threading
import time

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import torch

import purelm
from purelm._model import _xent
from purelm.reference import TorchLSTMCell, TorchNNLSTMLM

CONFIGS = {
    "a": {"vocab": 256, "embed": 128, "hidden": 512, "batch": 32, "seq": 64},
    "b": {"vocab": 65, "embed": 32, "hidden": 128, "batch": 16, "seq": 32},
    # PyTorch word_language_model's defaults (main.py: --emsize 200 --nhid 200 --nlayers 2 --batch_size 20
    # --bptt 35) on Wikitext-2's vocabulary.
    "w": {"vocab": 33278, "embed": 200, "hidden": 200, "layers": 2, "batch": 20, "seq": 35},
}


def random_batch(config, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, config["vocab"], (config["batch"], config["seq"]))


def vmap_batch_loss(model, tokens, states):
    """The straightforward batch path, for comparison: `jax.vmap` of the per-sequence model's loss
    (`purelm.batch_loss` computes the same numbers with the fused layers of `purelm._model._fused`)."""
    losses, states = jax.vmap(purelm.sequence_loss, in_axes=(None, 0, 0))(model, tokens, states)
    return jnp.sum(losses) / tokens.size, states


def materialised_batch_loss(model, tokens, states):
    """`purelm.batch_loss` with the output layer's logits materialised (`_xent`'s plain path for every
    size), for comparison with the fused, chunked default."""
    threshold = _xent.PLAIN_MAX_ELEMENTS
    _xent.PLAIN_MAX_ELEMENTS = float("inf")  # read while tracing, so only this loss is affected
    try:
        return purelm.batch_loss(model, tokens, states)
    finally:
        _xent.PLAIN_MAX_ELEMENTS = threshold


def purelm_model(config):
    tied = config.get("tied", False)
    return purelm.LSTMLM(
        config["vocab"],
        config["embed"],
        config["hidden"],
        num_layers=config.get("layers", 1),
        tie_embeddings=tied,
        key=jax.random.key(0),
        # word_language_model's tied decoder keeps its bias.
        **({"output_bias": True} if tied else {}),
    )


def purelm_candidate(config, loss=purelm.batch_loss, steps_per_call=1, wait_each=False):
    """Through the public API: LSTMLM + optax.adam, with make_train_step (one step per call) or
    make_train_steps (`steps_per_call` steps per call, as `purelm train` runs by default).

    Returns `run(calls)`, which makes `calls` consecutive calls and returns once all have finished."""
    model = purelm_model(config)
    optimizer = optax.adam(1e-3)
    opt_state = optimizer.init(eqx.filter(model, eqx.is_array))
    if steps_per_call == 1:
        step = purelm.make_train_step(optimizer, loss=loss)
        tokens = jnp.asarray(random_batch(config), jnp.int32)
    else:
        step = purelm.make_train_steps(optimizer, loss=loss)
        tokens = jnp.asarray(np.stack([random_batch(config, seed) for seed in range(steps_per_call)]), jnp.int32)
    carry = [(model, opt_state, purelm.batch_initial_state(model, config["batch"]))]

    def run(calls):
        # As `purelm train` runs them: a call returns before it has finished (JAX's asynchronous
        # dispatch), and the loop waits for the call before the last one, so at most two are in flight.
        # With `wait_each`, every call is waited for before the next is made (a loop that reads the loss
        # after every step).
        pending = []
        for _ in range(calls):
            model, opt_state, states = carry[0]
            model, opt_state, states, loss = step(model, opt_state, tokens, states)
            carry[0] = (model, opt_state, states)
            pending.append(loss)
            if wait_each:
                jax.block_until_ready(loss)
            elif len(pending) >= 2:
                jax.block_until_ready(pending[-2])
        jax.block_until_ready((carry[0], pending))

    return run


def nn_lstm_candidate(config):
    """embedding + torch.nn.LSTM + linear head (PyTorch's word_language_model layout), torch.optim.Adam."""
    device = torch_device()
    layers = config.get("layers", 1)
    model = TorchNNLSTMLM(config["vocab"], config["embed"], config["hidden"], layers)
    if config.get("tied", False):
        model.decoder.weight = model.encoder.weight  # word_language_model's --tied
    model = model.to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    tokens = torch.from_numpy(random_batch(config).T.copy()).to(device)
    zeros = torch.zeros(layers, config["batch"], config["hidden"], device=device)
    carry = [(zeros, zeros.clone())]

    def step():
        optimizer.zero_grad()
        logits, (h, c) = model(tokens, carry[0])
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, config["vocab"]), tokens.reshape(-1))
        loss.backward()
        optimizer.step()
        carry[0] = (h.detach(), c.detach())

    return _torch_steps(step, device)


class TutorialStyleLM(torch.nn.Module):
    """The tutorial's TorchLSTMLM (its own cell, learnable c_0, one token at a time, one sequence at a
    time), with an untied embedding and head so that it has the configuration's sizes."""

    def __init__(self, vocab, embed, hidden):
        super().__init__()
        self.cell = TorchLSTMCell(embed, hidden)
        self.embeddings = torch.nn.Parameter(torch.randn(vocab, embed))
        self.head = torch.nn.Linear(hidden, vocab)
        self.c_0 = torch.nn.Parameter(torch.zeros(hidden))

    def forward(self, seq, hc):
        loss = self.embeddings.new_zeros(())
        for idx in seq:
            loss -= torch.log_softmax(self.head(hc[0]), dim=-1)[idx]
            hc = self.cell(self.embeddings[idx, :], *hc)
        return loss, hc


def tutorial_candidate(config):
    model = TutorialStyleLM(config["vocab"], config["embed"], config["hidden"])
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    tokens = torch.from_numpy(random_batch(config))
    initial = (torch.tanh(model.c_0).detach(), model.c_0.detach())
    carry = [[initial] * config["batch"]]

    def step():
        optimizer.zero_grad()
        total, states = 0.0, []
        for seq, hc in zip(tokens, carry[0]):
            loss, (h, c) = model(seq, hc)
            total = total + loss
            states.append((h.detach(), c.detach()))
        (total / tokens.numel()).backward()
        optimizer.step()
        carry[0] = states

    return _torch_steps(step, torch.device("cpu"))


def _torch_steps(step, device):
    """`run(calls)` for a torch training step: the steps one after the other (torch on a CPU finishes each
    operation before returning; on CUDA the queue is drained at the end, as JAX's is)."""

    def run(calls):
        for _ in range(calls):
            step()
        if device.type == "cuda":
            torch.cuda.synchronize()

    return run


def torch_device():
    return torch.device("cuda" if jax.default_backend() == "gpu" else "cpu")


STEPS_PER_CALL = 10  # `purelm train --steps-per-call`'s default
MULTI_STEP = f"purelm, {STEPS_PER_CALL} steps per call"
CANDIDATES = {
    "purelm, 1 step per call": purelm_candidate,
    "purelm, 1 per call, waiting": lambda config: purelm_candidate(config, wait_each=True),
    MULTI_STEP: lambda config: purelm_candidate(config, steps_per_call=STEPS_PER_CALL),
    "purelm, vmap of sequence_loss": lambda config: purelm_candidate(config, loss=vmap_batch_loss),
    "purelm, materialised head": lambda config: purelm_candidate(config, loss=materialised_batch_loss),
    "torch.nn.LSTM": nn_lstm_candidate,
    "tutorial per-token (torch)": tutorial_candidate,
}
# Training steps made by one call of a candidate's `run` (1 unless listed).
STEPS_PER_RUN = {MULTI_STEP: STEPS_PER_CALL}
BASELINE = "torch.nn.LSTM"
# The tutorial's model is two orders of magnitude slower: time fewer of its steps, and never on a GPU.
SLOW = "tutorial per-token (torch)"
# Candidates a configuration leaves out: the large-vocabulary (w) the per-token model and the vmap path
# (minutes per step on 2 cores).
SKIP = {"a": set(), "b": set(), "w": {SLOW, "purelm, vmap of sequence_loss"}}


def timed(run, *args):
    start = time.perf_counter()
    run(*args)
    return time.perf_counter() - start


def nominal_flops_per_token(config):
    """6 x matmul parameters: forward 2 flops per weight, backward 4 (input and weight gradients)."""
    inputs = config["embed"] + (config.get("layers", 1) - 1) * config["hidden"]
    lstm = 4 * config["hidden"] * (inputs + config.get("layers", 1) * config["hidden"])
    head = config["hidden"] * config["vocab"]
    return 6 * (lstm + head)


def matmul_peak_gflops(repeats=5):
    """Best of a few large float32 matmuls through jax (default precision)."""
    size = 8192 if jax.default_backend() == "gpu" else 2048
    a = jax.random.normal(jax.random.key(0), (size, size), jnp.float32)
    matmul = jax.jit(lambda x: x @ x)
    matmul(a).block_until_ready()
    best = min(timed(lambda: matmul(a).block_until_ready()) for _ in range(repeats))
    return 2 * size**3 / best / 1e9


def loss_memory_mb(config):
    """Peak temporary memory (MB) of the compiled output layer + loss + gradients at the configuration's
    shapes, `{"fused": ..., "materialised": ...}`: XLA's own memory analysis, no run needed."""
    tokens = config["batch"] * config["seq"]
    h = jax.ShapeDtypeStruct((tokens, config["hidden"]), jnp.float32)
    weight = jax.ShapeDtypeStruct((config["vocab"], config["hidden"]), jnp.float32)
    bias = jax.ShapeDtypeStruct((config["vocab"],), jnp.float32)
    targets = jax.ShapeDtypeStruct((tokens,), jnp.int32)
    sizes = {}
    for name, log_probs in (("fused", _xent.linear_log_probs), ("materialised", _xent.plain_token_log_probs)):
        loss = lambda h, weight, bias, targets, log_probs=log_probs: -jnp.mean(log_probs(h, weight, bias, targets))
        compiled = jax.jit(jax.value_and_grad(loss, argnums=(0, 1, 2))).lower(h, weight, bias, targets).compile()
        sizes[name] = compiled.memory_analysis().temp_size_in_bytes / 2**20
    return sizes


def memory_growth_mb(name, config_name, steps=3, tied=False):
    """Peak-RSS growth of building + running `name` in a fresh interpreter (see the module docstring)."""
    result = subprocess.run(
        [sys.executable, __file__, "--memory-probe", name, "--config", config_name, "--steps", str(steps)]
        + (["--tied"] if tied else []),
        capture_output=True,
        text=True,
        check=True,
    )
    return float(result.stdout.split()[-1])


def rss_mb():
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def memory_probe(name, config, steps):
    if jax.default_backend() == "gpu":  # the accelerator's own peak, not the host's
        CANDIDATES[name](config)(steps)
        if name.startswith("purelm"):
            print(jax.devices()[0].memory_stats()["peak_bytes_in_use"] / 2**20)
        else:
            print(torch.cuda.max_memory_allocated() / 2**20)
        return
    # Sample the resident set size while the candidate builds, compiles and runs: ru_maxrss alone would
    # mostly report the peak of importing both frameworks.
    before = rss_mb()
    peak, done = [before], threading.Event()

    def sample():
        while not done.wait(0.002):
            peak[0] = max(peak[0], rss_mb())

    sampler = threading.Thread(target=sample)
    sampler.start()
    CANDIDATES[name](config)(steps)
    done.set()
    sampler.join()
    print(max(peak[0], rss_mb()) - before)


def benchmark(config, names, steps, repeats):
    first_step, runs = {}, {}
    for name in names:
        make = CANDIDATES[name]
        start = time.perf_counter()
        runs[name] = make(config)
        runs[name](1)
        first_step[name] = time.perf_counter() - start
    times = {name: [] for name in names}
    # Alternating rounds: every candidate sees the same stretch of machine load. Each round times one run
    # of consecutive calls, as a training loop makes them, and records its time per step.
    for _ in range(repeats):
        for name, run in runs.items():
            per_call = STEPS_PER_RUN.get(name, 1)
            calls = 1 if name == SLOW else max(1, steps // per_call)
            times[name].append(timed(run, calls) / (calls * per_call))
    return first_step, times


def machine_description():
    model = platform.processor() or "unknown CPU"
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            model = next(line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"{model}, {len(os.sched_getaffinity(0))} of {os.cpu_count()} cores usable"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", choices=["a", "b", "w", "all"], default="all", help="all: a and b")
    parser.add_argument("--tied", action="store_true", help="tie the head to the embedding (needs embed == hidden: w)")
    parser.add_argument("--steps", type=int, default=10, help="consecutive timed steps per candidate per round")
    parser.add_argument("--repeats", type=int, default=5, help="alternating rounds (one sample per candidate each)")
    parser.add_argument("--no-memory", action="store_true", help="skip the peak-memory subprocesses")
    parser.add_argument("--skip-tutorial", action="store_true", help="leave out the slow per-token model")
    parser.add_argument(
        "--keep-freed-memory",
        action="store_true",
        help="call purelm.keep_freed_memory() first (as `purelm train` does): every candidate reuses freed memory",
    )
    parser.add_argument("--memory-probe", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.steps < 1 or args.repeats < 1:
        parser.error("--steps and --repeats must be at least 1")
    configs = ["a", "b"] if args.config == "all" else [args.config]
    if args.tied and any(CONFIGS[name]["embed"] != CONFIGS[name]["hidden"] for name in configs):
        parser.error("--tied needs a configuration whose embed and hidden sizes are equal (w)")
    for name in configs:
        CONFIGS[name]["tied"] = args.tied
    torch.set_num_threads(len(os.sched_getaffinity(0)))
    if args.keep_freed_memory:
        purelm.keep_freed_memory()
    if args.memory_probe:
        memory_probe(args.memory_probe, CONFIGS[args.config], args.steps)
        return
    skip_slow = args.skip_tutorial or jax.default_backend() == "gpu"
    load_before = os.getloadavg()
    peak = matmul_peak_gflops()
    print(
        f"machine: {machine_description()}; jax {jax.__version__} ({jax.devices()[0].device_kind}), torch {torch.__version__} "
        f"({torch.get_num_threads()} threads); float32 matmul peak {peak:.0f} GFLOP/s (jnp matmul)"
    )
    header = (
        f"{'config':<7}{'implementation':<31}{'tokens/s':>10}{'best':>10}{'vs nn.LSTM':>11}"
        f"{'first step s':>13}{'peak MB':>9}{'GFLOP/s':>9}{'% peak':>8}"
    )
    rows = []
    notes = []
    for name in configs:
        config = CONFIGS[name]
        names = [c for c in CANDIDATES if c not in SKIP[name] and not (c == SLOW and skip_slow)]
        first_step, times = benchmark(config, names, args.steps, args.repeats)
        tokens = config["batch"] * config["seq"]
        baseline = statistics.median(times[BASELINE])
        for candidate, samples in times.items():
            median = statistics.median(samples)
            rate = tokens / median
            gflops = rate * nominal_flops_per_token(config) / 1e9
            probe_steps = 1 if candidate == SLOW else 3
            memory = "-" if args.no_memory else f"{memory_growth_mb(candidate, name, probe_steps, args.tied):.0f}"
            rows.append(
                f"{name:<7}{candidate:<31}{rate:>10.0f}{tokens / min(samples):>10.0f}{baseline / median:>10.2f}x"
                f"{first_step[candidate]:>13.2f}{memory:>9}{gflops:>9.1f}{100 * gflops / peak:>7.0f}%"
            )
        if name == "w":
            sizes = loss_memory_mb(config)
            notes.append(
                f"(w) output layer + loss + gradients, compiled peak temporary memory: fused {sizes['fused']:.0f} MB, "
                f"materialised {sizes['materialised']:.0f} MB ({sizes['fused'] / sizes['materialised']:.2f}x)"
            )
    print(header)
    print("\n".join(rows))
    load_after = os.getloadavg()
    memory = "accelerator peak" if jax.default_backend() == "gpu" else "host peak-RSS growth"
    print(
        f"load average (1 min) before {load_before[0]:.2f}, after {load_after[0]:.2f}; {args.repeats} rounds x "
        f"{args.steps} consecutive steps per candidate ({SLOW}: 1 per round); peak MB = {memory}"
        + ("; tied head" if args.tied else "")
        + ("; keep_freed_memory() for every candidate" if args.keep_freed_memory else "")
    )
    for note in notes:
        print(note)


if __name__ == "__main__":
    main()
