"""The data layer: tokenizers, corpora and their windows, the evaluation layout, and how a loss reads in a
tokenizer's unit (bits per byte, perplexity per word)."""
