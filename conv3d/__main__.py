"""``python -m conv3d`` is the ``conv3d`` command."""
import sys

from .cli import main

sys.exit(main())
