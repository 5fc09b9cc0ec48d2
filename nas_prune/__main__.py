"""python -m nas_prune."""
from nas_prune.cli import main

main()
