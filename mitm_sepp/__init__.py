"""mitm-sepp: the console command (``mitm-sepp``, see :mod:`mitm_sepp.cli`)."""
