"""``python -m lowprec.cli``: the same as the ``lowprec`` command."""

import sys

from lowprec.cli.app import main

sys.exit(main())
