"""``python -m pada_lite``."""
import sys

from .cli import main

sys.exit(main())
