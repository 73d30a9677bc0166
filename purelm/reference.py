"""The PyTorch originals: the tutorial's stateful LSTM language model, a stock nn.LSTM model, and
word_language_model's `RNNModel` (LSTM, GRU, RNN_TANH, RNN_RELU, optionally tied), and its `evaluate()`.

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


class RNNModel(torch.nn.Module):
    """PyTorch word_language_model's `RNNModel`, written for purelm's tests: the same modules under the same
    attribute names (so its state dict and its pickles are theirs), the same function.

    `rnn_type` is "LSTM", "GRU", "RNN_TANH" or "RNN_RELU"; `tie_weights` shares the embedding with the
    decoder, which keeps its bias. Dropout (`drop`) acts on the embeddings and on the top layer's output,
    and the recurrent module's own `dropout` between layers, in training mode only.
    `forward(input [seq, batch], hidden)` returns the log-probabilities `[seq * batch, ntoken]` of the
    token after each input token, and the new hidden state (`(h, c)` for an LSTM, `h` otherwise).
    """

    def __init__(self, rnn_type, ntoken, ninp, nhid, nlayers, dropout=0.5, tie_weights=False):
        super().__init__()
        self.ntoken = ntoken
        self.drop = torch.nn.Dropout(dropout)
        self.encoder = torch.nn.Embedding(ntoken, ninp)
        if rnn_type in ("LSTM", "GRU"):
            self.rnn = getattr(torch.nn, rnn_type)(ninp, nhid, nlayers, dropout=dropout)
        elif rnn_type in ("RNN_TANH", "RNN_RELU"):
            nonlinearity = rnn_type.removeprefix("RNN_").lower()
            self.rnn = torch.nn.RNN(ninp, nhid, nlayers, nonlinearity=nonlinearity, dropout=dropout)
        else:
            raise ValueError(f"rnn_type must be LSTM, GRU, RNN_TANH or RNN_RELU, got {rnn_type!r}")
        self.decoder = torch.nn.Linear(nhid, ntoken)
        if tie_weights:
            if nhid != ninp:
                raise ValueError("tie_weights needs nhid == ninp")
            self.decoder.weight = self.encoder.weight
        # Their initialisation: small uniform embedding and decoder, zero decoder bias.
        torch.nn.init.uniform_(self.encoder.weight, -0.1, 0.1)
        torch.nn.init.zeros_(self.decoder.bias)
        torch.nn.init.uniform_(self.decoder.weight, -0.1, 0.1)
        self.rnn_type = rnn_type
        self.nhid = nhid
        self.nlayers = nlayers

    def forward(self, input, hidden):
        output, hidden = self.rnn(self.drop(self.encoder(input)), hidden)
        logits = self.decoder(self.drop(output)).reshape(-1, self.ntoken)
        return torch.log_softmax(logits, dim=1), hidden

    def init_hidden(self, bsz):
        """Zero state for `bsz` sequences."""
        zeros = next(self.parameters()).new_zeros(self.nlayers, bsz, self.nhid)
        return (zeros, zeros.clone()) if self.rnn_type == "LSTM" else zeros


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


def wlm_evaluate(model, ids, *, eval_batch_size=10, bptt=35):
    """word_language_model's `batchify` and `evaluate()`, restated for any `RNNModel`-like module (theirs or
    `RNNModel`): `eval_batch_size` columns of the stream (the tail dropped), windows of `bptt` (the last one
    shorter) with the hidden state carried from zero, each window's mean loss weighted by its length, the sum
    divided by the column length minus one. Returns that loss (nats per token, what their main.py prints the
    exponential of) and the column length.

    >>> loss, column = wlm_evaluate(model, test_ids)  # doctest: +SKIP
    """
    data = torch.as_tensor(ids, dtype=torch.int64)
    nbatch = data.size(0) // eval_batch_size
    data = data[: nbatch * eval_batch_size].view(eval_batch_size, -1).t().contiguous()
    model.eval()
    total, hidden = 0.0, model.init_hidden(eval_batch_size)
    with torch.no_grad():
        for i in range(0, data.size(0) - 1, bptt):
            seq_len = min(bptt, len(data) - 1 - i)
            inputs, targets = data[i : i + seq_len], data[i + 1 : i + 1 + seq_len].reshape(-1)
            output, hidden = model(inputs, hidden)
            total += len(inputs) * torch.nn.functional.nll_loss(output, targets).item()
    return total / (len(data) - 1), nbatch
