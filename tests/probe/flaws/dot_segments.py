"""FLAW (test process only): request paths go on with their dot segments (no RFC 3986 §5.2.4 check)."""
from n32 import edge, routing

edge.check_path = routing.check_path = lambda path, param=":path": None
