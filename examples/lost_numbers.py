"""The "PyTorch to JAX" tutorial run in both frameworks, side by side, from the same initial weights.

A stateful PyTorch LSTM language model (`purelm.reference.TorchLSTMLM`) and its pure Equinox copy
(`purelm.from_torch`) learn the sequence 4, 8, 15, 16, 23, 42 with plain SGD and truncated
backpropagation through time (windows of 3 tokens, state carried between windows).

Run: python examples/lost_numbers.py
"""

import torch

import purelm
from purelm.reference import LOST_NUMBERS, LOST_VOCAB, TorchLSTMLM, train_tutorial

EPOCHS = 101
REPORT_EVERY = 50


def samples(lm: TorchLSTMLM, model: purelm.LSTMLM) -> tuple[list[int], list[int]]:
    """Greedy decoding from each model's learned initial state."""
    return lm.greedy_argmax(lm.hc_0), purelm.greedy(model, model.initial_state(), len(LOST_NUMBERS)).tolist()


def main() -> None:
    torch.manual_seed(0)
    lm = TorchLSTMLM(LOST_VOCAB)
    model = purelm.from_torch(lm)

    print(f"Training data {list(LOST_NUMBERS)}, vocabulary {LOST_VOCAB}, SGD lr 0.1, {EPOCHS} epochs, window 3")
    print(f"{'':16}{'PyTorch (TorchLSTMLM)':34}JAX (purelm.LSTMLM)")
    print("{:16}{!s:34}{!s}".format("Sample before:", *samples(lm, model)))
    lm, torch_losses = train_tutorial(lm, LOST_NUMBERS, window=3, learning_rate=0.1, epochs=EPOCHS)
    model, jax_losses = purelm.train_tutorial(model, LOST_NUMBERS, window=3, learning_rate=0.1, epochs=EPOCHS)
    for epoch in range(0, EPOCHS, REPORT_EVERY):
        print(f"{f'Loss epoch {epoch}:':16}{torch_losses[epoch]:<34.6f}{jax_losses[epoch]:.6f}")
    print("{:16}{!s:34}{!s}".format("Sample after:", *samples(lm, model)))


if __name__ == "__main__":
    main()
