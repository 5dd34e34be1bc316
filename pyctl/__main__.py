"""`python -m pyctl` is the `tapswitch` command."""
from pyctl.cli import main

raise SystemExit(main())
