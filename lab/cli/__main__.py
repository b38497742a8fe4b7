"""``python -m lab.cli``: the ``facelab`` command."""

from lab.cli import main

raise SystemExit(main())
