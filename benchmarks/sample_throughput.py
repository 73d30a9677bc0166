"""Sampling speed: tokens/s generating 1,000 tokens, purelm's one compiled loop against PyTorch.

Contenders, all with the same weights (the torch model converted by `purelm.from_torch_state_dict`),
temperature 0.8 and top-k 40, one sequence, after a warm-up run:

- purelm.sample: prompt and the whole 1,000-token loop in one `lax.scan` under one jit.
- jax, python loop: a jitted one-token step called from Python 1,000 times (how a first port often looks).
- torch nn.LSTM: `torch.no_grad()`, one `nn.LSTM` call per token in a Python loop, `torch.multinomial`;
  on CPU with 1 thread and with torch's default thread count (on a busy machine extra threads can cost a
  lot); on a GPU machine (JAX and torch both see one) on the GPU.

Each is timed `--repeats` times; the table shows the median, its ratio to the faster torch row, and the
first (warm-up) run, which holds the JAX contenders' compile time.

    python benchmarks/sample_throughput.py                 # both configurations
    python benchmarks/sample_throughput.py --config a --length 1000 --repeats 5
"""

from __future__ import annotations

import argparse
import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np
import torch

import purelm
from purelm.reference import TorchNNLSTMLM

CONFIGS = {
    "a": {"vocab": 256, "embed": 128, "hidden": 512},
    "b": {"vocab": 65, "embed": 32, "hidden": 128},
}
TEMPERATURE, TOP_K = 0.8, 40


def purelm_sampler(model, prompt, length):
    key = jax.random.key(0)
    prompt = jnp.asarray(prompt, jnp.int32)

    def run():
        return jax.block_until_ready(purelm.sample(model, key, prompt, length, TEMPERATURE, TOP_K))

    return run


def jax_python_loop(model, prompt, length):
    @jax.jit
    def step(model, state, token, key):
        logits = model.next_logits(state) / TEMPERATURE
        kth = jax.lax.top_k(logits, TOP_K)[0][-1]
        logits = jnp.where(logits < kth, -jnp.inf, logits)
        token = jax.random.categorical(key, logits)
        return model.step(token, state), token

    @jax.jit
    def read_prompt(model, tokens):
        return model(tokens, model.initial_state())[1]

    prompt = jnp.asarray(prompt, jnp.int32)

    def run():
        state = read_prompt(model, prompt)
        keys = jax.random.split(jax.random.key(0), length)
        out = []
        for i in range(length):
            state, token = step(model, state, None, keys[i])
            out.append(token)
        return jax.block_until_ready(out)

    return run


def torch_loop(module, prompt, length, device="cpu"):
    module = module.to(device)
    generator = torch.Generator(device=device).manual_seed(0)
    prompt = torch.tensor(prompt, dtype=torch.long, device=device)[:, None]  # (seq, batch=1), as nn.LSTM wants

    def run():
        with torch.no_grad():
            logits, hidden = module(prompt, None)
            out = []
            for _ in range(length):
                scores = logits[-1, 0] / TEMPERATURE
                kth = torch.topk(scores, TOP_K).values[-1]
                scores = scores.masked_fill(scores < kth, float("-inf"))
                token = torch.multinomial(torch.softmax(scores, -1), 1, generator=generator)
                out.append(int(token))
                logits, hidden = module(token.view(1, 1), hidden)
        return out

    return run


def timed(run, repeats, threads=None):
    default_threads = torch.get_num_threads()
    torch.set_num_threads(threads or default_threads)
    try:
        start = time.perf_counter()
        run()  # warm-up: compilation for the JAX contenders
        first = time.perf_counter() - start
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            run()
            times.append(time.perf_counter() - start)
    finally:
        torch.set_num_threads(default_threads)
    return first, statistics.median(times)


def bench(name, config, length, repeats):
    torch.manual_seed(0)
    module = TorchNNLSTMLM(config["vocab"], config["embed"], config["hidden"]).eval()
    model = purelm.from_torch_state_dict(module.state_dict())
    prompt = np.random.default_rng(0).integers(0, config["vocab"], 16).tolist()
    threads = torch.get_num_threads()
    results = {
        "purelm.sample (one compiled loop)": timed(purelm_sampler(model, prompt, length), repeats),
        "jax, python loop of a jitted step": timed(jax_python_loop(model, prompt, length), repeats),
    }
    if torch.cuda.is_available() and jax.devices()[0].platform == "gpu":
        results["torch nn.LSTM on cuda, python loop"] = timed(torch_loop(module, prompt, length, "cuda"), repeats)
    else:
        results["torch nn.LSTM, python loop, 1 thread"] = timed(torch_loop(module, prompt, length), repeats, 1)
        results[f"torch nn.LSTM, python loop, {threads} threads"] = timed(torch_loop(module, prompt, length), repeats)
    torch_rate = max(length / median for label, (_, median) in results.items() if label.startswith("torch"))
    sizes = f"vocab {config['vocab']}, embed {config['embed']}, hidden {config['hidden']}"
    print(f"\nconfig ({name}): {sizes}; {length} tokens, batch 1, median of {repeats}")
    print(f"{'contender':<40} {'tokens/s':>10} {'vs torch':>9} {'first run (s)':>14}")
    for label, (first, median) in results.items():
        rate = length / median
        print(f"{label:<40} {rate:>10,.0f} {rate / torch_rate:>8.2f}x {first:>14.2f}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", choices=sorted(CONFIGS), action="append")
    parser.add_argument("--length", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    device = jax.devices()[0]
    print(
        f"jax device: {device.device_kind} ({device.platform}); torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads, cuda: {torch.cuda.is_available()}"
    )
    for name in args.config or sorted(CONFIGS):
        bench(name, CONFIGS[name], args.length, args.repeats)


if __name__ == "__main__":
    main()
