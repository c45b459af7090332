"""``python -m pcbench`` (and ``torchrun -m pcbench train ...``) run the command line."""

from .cli import main

main()
