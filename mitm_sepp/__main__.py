import sys

from mitm_sepp.cli import main

sys.exit(main())
