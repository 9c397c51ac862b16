"""The ``riskmodel`` command line: ``main`` parses and dispatches; ``demo`` and ``bench``
are its two packaged jobs and ``precompile`` its first-run compile helper.

Nothing in the package imports this subpackage (``tests/test_layering.py``).
"""

from riskmodel.cli.main import EXIT_USER_ERROR, main, one_line_warnings

__all__ = ["EXIT_USER_ERROR", "main", "one_line_warnings"]
