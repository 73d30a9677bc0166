"""The model layer: recurrent cells and `LSTMLM`, the fused batched layers and the fused output head.

`purelm.interop` (PyTorch weights) and `purelm.reference` (the PyTorch original) belong to this layer too;
they are public modules, so they stay at the top of the package."""
