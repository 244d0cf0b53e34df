"""``python -m automl_noisy.cli``: the ``automl-noisy`` command, for an environment without the
console script on its PATH; the same ``main``, the same exit codes."""

from __future__ import annotations

import sys

from automl_noisy.cli.entry import main

if __name__ == "__main__":
    sys.exit(main())
