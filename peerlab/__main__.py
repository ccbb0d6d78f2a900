"""``python -m peerlab``: the ``peerlab`` command."""

import sys

from peerlab.cli import main

sys.exit(main())
