"""`python -m abi_checks`: see abi_checks.cli."""

import sys

from abi_checks.cli import main

sys.exit(main())
