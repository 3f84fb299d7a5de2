"""``python -m metalore``: the ``metalore`` command line."""

from metalore.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
