"""``python -m benchmarks [--json] [--quick]``: print the table of ratios from one run."""

from benchmarks.run import main

raise SystemExit(main())
