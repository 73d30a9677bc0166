"""The PyTorch original: the tutorial's stateful LSTM language model, and a stock nn.LSTM model.

Needs the `torch` extra; `import purelm` never imports this module.
"""

import torch

LOST_NUMBERS = (4, 8, 15, 16, 23, 42)
LOST_VOCAB = 43


class TorchLSTMCell(torch.nn.Module):
    """The tutorial's hand-written LSTM cell (one bias, gates i, f, g, o)."""

    def __init__(self, in_dim, out_dim):
        super().__init__()
        self.weight_ih = torch.nn.Parameter(torch.rand(4 * out_dim, in_dim))
        self.weight_hh = torch.nn.Parameter(torch.rand(4 * out_dim, out_dim))
        self.bias = torch.nn.Parameter(torch.zeros(4 * out_dim))

    def forward(self, inputs, h, c):
        ifgo = self.weight_ih @ inputs + self.weight_hh @ h + self.bias
        i, f, g, o = torch.chunk(ifgo, 4)
        i = torch.sigmoid(i)
        f = torch.sigmoid(f)
        g = torch.tanh(g)
        o = torch.sigmoid(o)
        new_c = f * c + i * g
        new_h = o * torch.tanh(new_c)
        return new_h, new_c


class TorchLSTMLM(torch.nn.Module):
    """The tutorial's language model: tied embeddings, a learnable `c_0`, one token at a time."""

    def __init__(self, vocab_size, dim=17):
        super().__init__()
        self.cell = TorchLSTMCell(dim, dim)
        self.embeddings = torch.nn.Parameter(torch.rand(vocab_size, dim))
        self.c_0 = torch.nn.Parameter(torch.zeros(dim))

    @property
    def hc_0(self):
        return torch.tanh(self.c_0), self.c_0

    def forward(self, seq, hc):
        loss = self.embeddings.new_zeros(())
        for idx in seq:
            loss -= torch.log_softmax(self.embeddings @ hc[0], dim=-1)[idx]
            hc = self.cell(self.embeddings[idx, :], *hc)
        return loss, hc

    def greedy_argmax(self, hc, length=6):
        with torch.no_grad():
            idxs = []
            for _ in range(length):
                idx = torch.argmax(self.embeddings @ hc[0])
                idxs.append(idx.item())
                hc = self.cell(self.embeddings[idx, :], *hc)
        return idxs


class TorchNNLSTMLM(torch.nn.Module):
    """A stock LSTM language model, named as PyTorch's word_language_model example names it."""

    def __init__(self, vocab_size, embed_dim, hidden_dim, num_layers=1):
        super().__init__()
        self.encoder = torch.nn.Embedding(vocab_size, embed_dim)
        self.rnn = torch.nn.LSTM(embed_dim, hidden_dim, num_layers)
        self.decoder = torch.nn.Linear(hidden_dim, vocab_size)

    def forward(self, input, hidden):
        output, hidden = self.rnn(self.encoder(input), hidden)
        return self.decoder(output), hidden


def train_tutorial(lm, data=LOST_NUMBERS, *, window=3, learning_rate=0.1, epochs=101):
    """The tutorial's training run (plain SGD, truncated BPTT); returns `lm` and each epoch's loss."""
    data = torch.tensor(data)
    epoch_losses = []
    for _ in range(epochs):
        hc = lm.hc_0
        total = 0.0
        for start in range(0, len(data), window):
            batch = data[start : start + window]
            loss, (h, c) = lm(batch, hc)
            hc = (h.detach(), c.detach())
            total += loss.item()
            loss.backward()
            with torch.no_grad():
                for param in lm.parameters():
                    if param.grad is not None:
                        param -= learning_rate * param.grad
                        param.grad = None
        epoch_losses.append(total)
    return lm, epoch_losses
