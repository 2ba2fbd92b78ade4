"""``python -m scice.cli``: the ``scice`` command."""

from __future__ import annotations

import sys

from . import main

sys.exit(main())
