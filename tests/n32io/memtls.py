"""Two pyOpenSSL connections handshaking in memory (memory BIOs), for the n32io.tls tests."""
from __future__ import annotations

from OpenSSL import SSL


def pump(client: SSL.Connection, server: SSL.Connection, rounds: int = 20) -> None:
    """Move handshake octets between the two until both are done or one fails (bounded)."""
    for _ in range(rounds):
        for a, b in ((client, server), (server, client)):
            try:
                a.do_handshake()
            except SSL.WantReadError:
                pass
            try:
                b.bio_write(a.bio_read(65536))
            except SSL.WantReadError:
                pass
        if client.get_peer_finished() and server.get_peer_finished():
            return
