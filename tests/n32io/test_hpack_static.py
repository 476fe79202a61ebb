"""n32io.h2client.StaticEncoder: HPACK any decoder reads, nothing in the dynamic table."""
from __future__ import annotations

import hpack
import pytest

from n32io.h2client import StaticEncoder

HEADERS = [(":method", "POST"), (":scheme", "https"), (":authority", "ausf.5gc.mnc070.mcc999.3gppnetwork.org"),
           (":path", "/nausf-auth/v1/ue-authentications"), ("content-type", "application/json"),
           ("3gpp-sbi-target-apiroot", "https://ausf.5gc.mnc070.mcc999.3gppnetwork.org"),
           ("accept-encoding", "gzip, deflate"), ("content-length", "109"), ("x-ünicode", "wert ß")]


@pytest.mark.parametrize("rounds", [1, 3])
def test_blocks_decode_to_the_same_fields_and_leave_the_table_empty(rounds):
    enc, dec = StaticEncoder(), hpack.Decoder()
    secret = hpack.NeverIndexedHeaderTuple("authorization", "Bearer abc.def.ghi")
    for _ in range(rounds):
        block = enc.encode(HEADERS + [secret])
        out = dec.decode(block, raw=False)
        assert out == HEADERS + [("authorization", "Bearer abc.def.ghi")]
        assert isinstance(out[-1], hpack.NeverIndexedHeaderTuple)       # RFC 7541 §6.2.3 kept
        assert len(dec.header_table.dynamic_entries) == 0
    # static full match: one octet (":method: POST" is index 3); no Huffman: the value is readable
    assert enc.encode([(":method", "POST")]) == b"\x83"
    assert b"ausf.5gc.mnc070.mcc999.3gppnetwork.org" in enc.encode(HEADERS)


def test_a_table_size_update_from_the_peer_is_announced_and_still_decodes():
    enc, dec = StaticEncoder(), hpack.Decoder()
    enc.header_table_size = 0       # h2 sets this from the peer's SETTINGS_HEADER_TABLE_SIZE
    dec.max_allowed_table_size = 0
    assert dec.decode(enc.encode(HEADERS), raw=False) == HEADERS


def test_the_memo_is_bounded():
    enc = StaticEncoder()
    for i in range(StaticEncoder.MEMO * 2 + 5):
        enc.encode([("x-n", str(i))])
    assert len(enc._memo) <= StaticEncoder.MEMO
