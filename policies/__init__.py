"""The shipped protection policies (docs/policies.md), installed with the package.

``DIR`` is where they are, in a clone and in an installed wheel alike; ``mitm-sepp policies``
prints it so that a configuration can name these files.
"""
from pathlib import Path

DIR = Path(__file__).resolve().parent
ENCRYPTION = DIR / "data-type-encryption.yaml"
PLACEMENT = DIR / "placement"
MODIFICATION = DIR / "modification.yaml"
