"""``python -m carbontop``: the same as the ``carbontop`` command."""

from carbontop.cli import main

raise SystemExit(main())
