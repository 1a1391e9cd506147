"""``python -m unstructured_jobs.testing``: run the emulator (see ``main``)."""

import sys

from ._cli import main

if __name__ == "__main__":
    sys.exit(main())
