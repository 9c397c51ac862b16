"""``python -m riskmodel.cli``: the command line."""

import sys

from riskmodel.cli.main import main

sys.exit(main())
