"""cnnkit: a toolkit for convolutional neural networks, built on PyTorch."""

__version__ = "0.1.0"
