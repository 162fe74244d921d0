"""``python -m metaally`` does what the ``metaally`` console script does."""

from metaally.cli import main

raise SystemExit(main())
