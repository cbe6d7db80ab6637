"""``python -m cnnkit``: the same as the ``cnnkit`` command (torchrun launches it as a module)."""

from .cli import main

if __name__ == "__main__":
    raise SystemExit(main())
