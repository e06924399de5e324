"""Lets `python -m sc_ci` behave exactly like the `sc-ci` console script."""

from sc_ci.cli import main

raise SystemExit(main())
