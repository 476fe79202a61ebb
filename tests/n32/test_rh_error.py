"""Roaming-hub-originated errors (TS 33.501 §13.2.4.5.2a): built by the hub, accepted only from
the adjacent hub, for the pending request."""
from __future__ import annotations

import os

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from n32 import jwe, rh_error
from n32.errors import N32Error


def keypair():
    k = ec.generate_private_key(ec.SECP256R1())
    return (k.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()),
            k.public_key().public_bytes(serialization.Encoding.PEM,
                                        serialization.PublicFormat.SubjectPublicKeyInfo).decode())


def request(mid="7"):
    block = {"metaData": {"n32fContextId": "0123456789abcdef", "messageId": mid, "authorizedIpxId": "hub.lab"},
             "requestLine": {"method": "GET", "scheme": "https", "authority": "udm.x", "path": "/x",
                             "protocolVersion": "HTTP/2"}}
    return {"reformattedData": jwe.encrypt(os.urandom(16), os.urandom(12), "A128GCM", block, [])}


def test_round_trip():
    priv, pub = keypair()
    req = request()
    err = rh_error.make(req, "hub.lab", priv, 403, "CONTRACTUAL_REASONS", "no")
    assert rh_error.is_rh_error(err) and not rh_error.is_rh_error(req)
    status, problem = rh_error.open_error(err, "7", req["reformattedData"]["tag"], "hub.lab", [pub])
    assert status == 403 and problem["cause"] == "CONTRACTUAL_REASONS"


@pytest.mark.parametrize("case", ["other hub", "wrong key", "other request", "other tag"])
def test_rejections(case):
    priv, pub = keypair()
    other_priv, other_pub = keypair()
    req = request()
    err = rh_error.make(req, "evil.lab" if case == "other hub" else "hub.lab",
                        other_priv if case == "wrong key" else priv, 403, "X", "y")
    with pytest.raises(N32Error) as ei:
        rh_error.open_error(err, "8" if case == "other request" else "7",
                            "AAAA" if case == "other tag" else req["reformattedData"]["tag"], "hub.lab",
                            [pub] if case != "other hub" else [pub])
    assert ei.value.cause == "INVALID_RH_ERROR"
