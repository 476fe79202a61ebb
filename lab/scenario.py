"""The roaming scenario as data: what a visited AMF / V-SMF (PLMN 001/01) asks the home PLMN
(999/70) for one UE, through the SEPPs (TS 23.502 §4.2.2.2.2 registration with AMF change and
5G AKA, §4.3.2.2.2 home-routed PDU session establishment). The UE comes from its home network:
the new (visited) AMF fetches its context from the old AMF in the home PLMN by 5G-GUTI and
reports the transfer complete after authenticating the UE.

A scenario is a list of :class:`Step`; each step's ``build(prev)`` gets the responses of the
earlier steps of the same UE (the confirmation PUTs to the ``_links`` href of the authentication,
the later steps use the SUPI the AUSF returned) and returns a :class:`Request` addressed by its target apiRoot
(``3gpp-Sbi-Target-apiRoot``, TS 29.500 §5.2.3.2.4): the client sends it to the cSEPP.

Also here: the lab subscribers. Each UE's USIM keys are derived from its SUPI and provisioned
identically in the home UDM (lab/nf.py), so that 5G AKA works end to end: MILENAGE
(TS 35.206) and the 5G key derivations of TS 33.501 Annex A (KDF of TS 33.220 Annex B.2).
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import urllib.parse
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from lab.h2server import multipart_decode, multipart_encode
from n32 import wire

VISITED_MCC, VISITED_MNC = "001", "01"
HOME_MCC, HOME_MNC = "999", "70"
LAB_NS = uuid.UUID("5e7b1c1e-3a2d-4b8e-9d7c-5e9970001001")  # uuid5 namespace of all lab IDs
AMF_ID = str(uuid.uuid5(LAB_NS, "amf.001-01"))
VSMF_ID = str(uuid.uuid5(LAB_NS, "smf.001-01"))


def fqdn(nf: str, mcc: str, mnc: str) -> str:
    """``<nf>.5gc.mnc<3 digits>.mcc<3 digits>.3gppnetwork.org`` (TS 23.003 §28.3.2.3)."""
    return f"{nf}.5gc.mnc{int(mnc):03d}.mcc{mcc}.3gppnetwork.org"


def api_root(nf: str, mcc: str = HOME_MCC, mnc: str = HOME_MNC) -> str:
    return f"https://{fqdn(nf, mcc, mnc)}"


def serving_network_name(mcc: str = VISITED_MCC, mnc: str = VISITED_MNC) -> str:
    """``5G:mnc<mnc>.mcc<mcc>.3gppnetwork.org`` (TS 24.501 §9.12.1, TS 33.501 §6.1.1.4)."""
    return f"5G:mnc{int(mnc):03d}.mcc{mcc}.3gppnetwork.org"


def supi(ue: int, mcc: str = HOME_MCC, mnc: str = HOME_MNC) -> str:
    """``imsi-<mcc><mnc><10-digit MSIN>``, e.g. ``imsi-999700000000001`` for UE 1."""
    return f"imsi-{mcc}{mnc}{ue:010d}"


def suci(ue: int, mcc: str = HOME_MCC, mnc: str = HOME_MNC) -> str:
    """Null-scheme SUCI of :func:`supi` (TS 23.003 §2.2B, TS 29.503 ``SupiOrSuci``)."""
    return f"suci-0-{mcc}-{mnc}-0000-0-0-{ue:010d}"


# --------------------------------------------------------------------------- USIM / 5G AKA
LAB_OP = hashlib.sha256(b"mitm-sepp lab OP").digest()[:16]
AMF_FIELD = b"\x80\x00"  # authentication management field, separation bit set (TS 33.501 Annex A.1)


def _aes(k: bytes, block: bytes) -> bytes:
    enc = Cipher(algorithms.AES(k), modes.ECB()).encryptor()
    return enc.update(block) + enc.finalize()


def _xor(a: bytes, b: bytes) -> bytes:
    return bytes(x ^ y for x, y in zip(a, b))


def _rot(x: bytes, bits: int) -> bytes:
    n = bits // 8
    return x[n:] + x[:n]


def milenage_opc(k: bytes, op: bytes) -> bytes:
    return _xor(_aes(k, op), op)


def milenage(k: bytes, opc: bytes, rand: bytes, sqn: bytes, amf: bytes) -> dict[str, bytes]:
    """MILENAGE f1..f5 (TS 35.206 §4.1): mac_a, mac_s, res, ck, ik, ak, ak_star."""
    temp = _aes(k, _xor(rand, opc))
    in1 = sqn + amf + sqn + amf
    out1 = _xor(_aes(k, _xor(temp, _rot(_xor(in1, opc), 64))), opc)

    def out(r: int, c: int) -> bytes:
        return _xor(_aes(k, _xor(_rot(_xor(temp, opc), r), c.to_bytes(16, "big"))), opc)

    out2, out3, out4, out5 = out(0, 1), out(32, 2), out(64, 4), out(96, 8)
    return {"mac_a": out1[:8], "mac_s": out1[8:], "res": out2[8:], "ak": out2[:6], "ck": out3,
            "ik": out4, "ak_star": out5[:6]}


def kdf(key: bytes, fc: int, *params: bytes) -> bytes:
    """KDF of TS 33.220 Annex B.2: HMAC-SHA-256(key, FC || P0 || L0 || P1 || L1 ...)."""
    s = bytes([fc]) + b"".join(p + len(p).to_bytes(2, "big") for p in params)
    return hmac.new(key, s, hashlib.sha256).digest()


def subscriber_keys(supi_: str) -> tuple[bytes, bytes]:
    """(K, OPc) of a lab subscriber, derived from its SUPI."""
    k = hashlib.sha256(b"mitm-sepp lab K|" + supi_.encode()).digest()[:16]
    return k, milenage_opc(k, LAB_OP)


def home_auth_vector(supi_: str, snn: str, rand: bytes, sqn: bytes) -> dict[str, bytes]:
    """The 5G HE AV the UDM/ARPF generates (TS 33.501 §6.1.3.2, Annex A.2, A.4): rand, autn,
    xres_star, kausf; plus the AUSF's derived hxres_star (A.5) and kseaf (A.6)."""
    k, opc = subscriber_keys(supi_)
    f = milenage(k, opc, rand, sqn, AMF_FIELD)
    sqn_ak = _xor(sqn, f["ak"])
    xres_star = kdf(f["ck"] + f["ik"], 0x6B, snn.encode(), rand, f["res"])[-16:]
    kausf = kdf(f["ck"] + f["ik"], 0x6A, snn.encode(), sqn_ak)
    return {"rand": rand, "autn": sqn_ak + AMF_FIELD + f["mac_a"], "xres_star": xres_star, "kausf": kausf,
            "hxres_star": hashlib.sha256(rand + xres_star).digest()[-16:],
            "kseaf": kdf(kausf, 0x6C, snn.encode())}


def usim_res_star(supi_: str, snn: str, rand: bytes, autn: bytes) -> bytes:
    """The UE side (TS 33.501 §6.1.3.2 step 6): check AUTN's MAC, return RES*; ValueError if bad."""
    k, opc = subscriber_keys(supi_)
    ak = milenage(k, opc, rand, b"\0" * 6, AMF_FIELD)["ak"]  # f5 does not depend on SQN
    sqn = _xor(autn[:6], ak)
    f = milenage(k, opc, rand, sqn, autn[6:8])
    if not hmac.compare_digest(f["mac_a"], autn[8:]):
        raise ValueError("AUTN MAC failure")
    return kdf(f["ck"] + f["ik"], 0x6B, snn.encode(), rand, f["res"])[-16:]


OLD_AMF_ID = "cafe00"


def guti(ue: int, mcc: str = HOME_MCC, mnc: str = HOME_MNC) -> str:
    """The 5G-GUTI the old (home) AMF gave UE ``ue``: ``5g-guti-<mcc><mnc><AMF ID><5G-TMSI>``
    (TS 29.571 ``Guti``, TS 23.003 §2.10.1): AMF region 0xca, set/pointer 0xfe00, TMSI = ``ue``."""
    return f"5g-guti-{mcc}{mnc}{OLD_AMF_ID}{ue:08x}"


def _bcd_plmn(mcc: str, mnc: str) -> bytes:
    """PLMN identity as 3 BCD octets (TS 24.008 §10.5.1.3): MCC2 MCC1, MNC3 MCC3, MNC2 MNC1."""
    d = [int(c) for c in mcc]
    m = [int(c) for c in mnc] + ([0xF] if len(mnc) == 2 else [])
    return bytes([d[1] << 4 | d[0], m[2] << 4 | d[2], m[1] << 4 | m[0]])


def n1_registration_request(ue: int) -> bytes:
    """A plain 5GMM REGISTRATION REQUEST (TS 24.501 §8.2.6): initial registration, ngKSI 1,
    5GS mobile identity = the 5G-GUTI of :func:`guti` (§9.11.3.4, type 010)."""
    g = guti(ue)[len("5g-guti-"):]
    plmn_len = len(HOME_MCC + HOME_MNC)
    identity = (b"\xF2" + _bcd_plmn(HOME_MCC, HOME_MNC) + bytes.fromhex(g[plmn_len:plmn_len + 6])
                + bytes.fromhex(g[plmn_len + 6:]))
    return bytes([0x7E, 0x00, 0x41, 0x11]) + len(identity).to_bytes(2, "big") + identity


def guti_of_registration_request(n1: bytes) -> str:
    """The 5G-GUTI in a REGISTRATION REQUEST built like :func:`n1_registration_request`."""
    if len(n1) < 6 or n1[:3] != b"\x7E\x00\x41":
        raise ValueError("not a plain 5GMM REGISTRATION REQUEST")
    n = int.from_bytes(n1[4:6], "big")
    ident = n1[6:6 + n]
    if n != 11 or len(ident) != 11 or ident[0] & 0x07 != 0x02:
        raise ValueError("the 5GS mobile identity is not a 5G-GUTI")
    b = ident[1:4]
    mcc = f"{b[0] & 0xF}{b[0] >> 4}{b[1] & 0xF}"
    mnc = f"{b[2] & 0xF}{b[2] >> 4}" + ("" if b[1] >> 4 == 0xF else f"{b[1] >> 4}")
    return f"5g-guti-{mcc}{mnc}{ident[4:].hex()}"


# --------------------------------------------------------------------------- N1 SM (TS 24.501)
def n1_establishment_request(ue: int, psi: int) -> bytes:
    """A PDU SESSION ESTABLISHMENT REQUEST (TS 24.501 §8.3.1) with an extended PCO whose
    contents hold 0x00 and CRLF / ``--`` sequences on purpose (multipart byte-exactness)."""
    epco = b"\x80\x00\x0d\x00\x00\x0a\x00\r\n--\r\n\r\n\x00" + ue.to_bytes(4, "big")
    return (bytes([0x2E, psi, 0x01, 0xC1, 0xFF, 0xFF, 0x91, 0xA1])
            + b"\x7B" + len(epco).to_bytes(2, "big") + epco)


def n1_establishment_accept(ue: int, psi: int, pti: int, ipv4: str) -> bytes:
    """A PDU SESSION ESTABLISHMENT ACCEPT (TS 24.501 §8.3.2): type/SSC, QoS rules, session AMBR,
    PDU address, and an extended PCO with 0x00/CRLF bytes (DNS server, CRLF-laden padding)."""
    qos_rules = b"\x01\x00\x06\x31\x01\x01\xff\x01\x09"
    ambr = b"\x06\x06\x00\x01\x06\x00\x02"
    addr = b"\x29\x05\x01" + bytes(int(x) for x in ipv4.split("."))
    epco = b"\x80\x00\x0d\x04\x08\x08\x08\x08\x00\x0a\x00\r\n\r\n--\x00" + ue.to_bytes(4, "big")
    return (bytes([0x2E, psi, pti, 0xC2, 0x11]) + len(qos_rules).to_bytes(2, "big") + qos_rules
            + ambr + addr + b"\x7B" + len(epco).to_bytes(2, "big") + epco)


# --------------------------------------------------------------------------- requests
@dataclass(frozen=True)
class Request:
    """One SBI request, addressed by the producer's apiRoot (sent to the SEPP with the
    ``3gpp-sbi-target-apiroot`` header, which is already in ``headers``)."""
    method: str
    api_root: str
    path: str
    query: str = ""
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""


@dataclass
class Response:
    status: int
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers if k == name.lower()), None)

    def json(self) -> Any:
        """The JSON body, or of a multipart body its first (root) part."""
        ctype = self.header("content-type") or ""
        if ctype.startswith("multipart/"):
            return json.loads(multipart_decode(ctype, self.body)[0][1])
        return json.loads(self.body)


@dataclass(frozen=True)
class Step:
    name: str
    api: str                   # e.g. "Nausf_UEAuthentication", for per-API reporting
    expected_status: int
    build: Callable[[list[Response]], Request]
    also_ok: frozenset[int] = field(default_factory=frozenset)  # e.g. 200 on re-registration

    def ok(self, status: int) -> bool:
        return status == self.expected_status or status in self.also_ok


def _b64url(b: bytes) -> str:
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def access_token(consumer: str, producer_type: str, scope: str) -> str:
    """A JWT-looking OAuth2 access token (claims of TS 29.510 §6.3.5.2.4 AccessTokenClaims);
    the signature is fake and no lab NF verifies it."""
    header = {"alg": "ES256", "typ": "JWT"}
    claims = {"iss": str(uuid.uuid5(LAB_NS, "nrf.999-70")), "sub": consumer, "aud": producer_type,
              "scope": scope, "exp": 1893456000,
              "consumerPlmnId": {"mcc": VISITED_MCC, "mnc": VISITED_MNC},
              "producerPlmnId": {"mcc": HOME_MCC, "mnc": HOME_MNC}}
    signing_input = f"{_b64url(json.dumps(header).encode())}.{_b64url(json.dumps(claims).encode())}"
    return f"{signing_input}.{_b64url(hashlib.sha512(signing_input.encode()).digest())}"


def _request(method: str, nf: str, path: str, *, scope: str, body: Any = None, query: str = "",
             user_agent: str = "AMF", content_type: str = "application/json",
             raw: bytes | None = None, root: str | None = None) -> Request:
    consumer = AMF_ID if user_agent == "AMF" else VSMF_ID
    root = root or api_root(nf)
    headers = [(wire.TARGET_API_ROOT, root),
               ("authorization", "Bearer " + access_token(consumer, nf.upper(), scope)),
               ("user-agent", user_agent),  # TS 29.500 §5.2.2.2: starts with the NF type
               ("accept", "application/json, application/problem+json")]
    data = raw if raw is not None else (b"" if body is None else json.dumps(body).encode())
    if data:
        headers.append(("content-type", content_type))
    return Request(method, root, path, query, tuple(headers), data)


# positions of the responses the later steps read (see ue_steps)
_AUTH, _CONFIRM = 1, 2


def _supi_from_auth(prev: list[Response]) -> str:
    s = prev[_CONFIRM].json().get("supi") if len(prev) > _CONFIRM else None
    if not s:
        raise ValueError("the AUSF did not return a SUPI in the 5G-AKA confirmation")
    return s


def ue_steps(ue: int) -> list[Step]:
    """The eight steps of UE number ``ue`` (1-based)."""
    snn = serving_network_name()
    plmn = {"mcc": VISITED_MCC, "mnc": VISITED_MNC}
    amf_cb = f"{api_root('amf', VISITED_MCC, VISITED_MNC)}/namf-callback/v1/{supi(ue)}"
    psi, pti = 5, 1

    def context_transfer(prev: list[Response]) -> Request:  # TS 29.518 §5.2.2.2.2, TS 23.502 4.2.2.2.2 step 4
        data = {"reason": "INIT_REG", "accessType": "3GPP_ACCESS", "plmnId": plmn,
                "regRequest": {"n1MessageClass": "5GMM", "n1MessageContent": {"contentId": "regRequest"}}}
        ctype, body = multipart_encode([
            ([("content-type", "application/json")], json.dumps(data).encode()),
            ([("content-type", "application/vnd.3gpp.5gnas"), ("content-id", "regRequest")],
             n1_registration_request(ue)),
        ], boundary=f"lab-boundary-{ue}-reg")
        return _request("POST", "amf", f"/namf-comm/v1/ue-contexts/{guti(ue)}/transfer", scope="namf-comm",
                        raw=body, content_type=ctype)

    def auth(prev: list[Response]) -> Request:  # TS 29.509 §5.2.2.2.2
        return _request("POST", "ausf", "/nausf-auth/v1/ue-authentications", scope="nausf-auth",
                        body={"supiOrSuci": suci(ue), "servingNetworkName": snn})

    def confirm(prev: list[Response]) -> Request:  # TS 29.509 §5.2.2.2.2 step 3, TS 33.501 §6.1.3.2
        ctx = prev[_AUTH].json()
        av = ctx["5gAuthData"]
        res_star = usim_res_star(supi(ue), snn, bytes.fromhex(av["rand"]), bytes.fromhex(av["autn"]))
        if hashlib.sha256(bytes.fromhex(av["rand"]) + res_star).digest()[-16:].hex() != av["hxresStar"].lower():
            raise ValueError("HRES* != HXRES* (SEAF check, TS 33.501 §6.1.3.2 step 10)")
        href = urllib.parse.urlsplit(ctx["_links"]["5g-aka"]["href"])  # as the SEPP may have rewritten it
        return _request("PUT", "ausf", href.path, scope="nausf-auth", body={"resStar": res_star.hex()},
                        root=f"{href.scheme}://{href.netloc}")

    def transfer_update(prev: list[Response]) -> Request:  # TS 29.518 §5.2.2.2.3, TS 23.502 step 10
        _supi_from_auth(prev)  # only once the UE is authenticated
        return _request("POST", "amf", f"/namf-comm/v1/ue-contexts/{guti(ue)}/transfer-update",
                        scope="namf-comm", body={"transferStatus": "TRANSFERRED"})

    def register(prev: list[Response]) -> Request:  # TS 29.503 §5.3.2.2.2
        s = _supi_from_auth(prev)
        body = {"amfInstanceId": AMF_ID, "supi": s, "deregCallbackUri": f"{amf_cb}/dereg-notify",
                "guami": {"plmnId": plmn, "amfId": "cafe00"}, "ratType": "NR",
                "initialRegistrationInd": True, "pei": f"imeisv-35{ue:012d}01",
                "imsVoPs": "HOMOGENEOUS_SUPPORT"}
        return _request("PUT", "udm", f"/nudm-uecm/v1/{s}/registrations/amf-3gpp-access",
                        scope="nudm-uecm", body=body)

    def am_data(prev: list[Response]) -> Request:  # TS 29.503 §5.2.2.2.3
        s = _supi_from_auth(prev)
        q = urllib.parse.urlencode({"plmn-id": json.dumps(plmn, separators=(",", ":"))})
        return _request("GET", "udm", f"/nudm-sdm/v2/{s}/am-data", scope="nudm-sdm", query=q)

    def subscribe(prev: list[Response]) -> Request:  # TS 29.503 §5.2.2.3.2
        s = _supi_from_auth(prev)
        body = {"nfInstanceId": AMF_ID, "callbackReference": f"{amf_cb}/sdm-notify",
                "monitoredResourceUris": [f"{api_root('udm')}/nudm-sdm/v2/{s}/am-data"],
                "plmnId": plmn, "implicitUnsubscribe": True}
        return _request("POST", "udm", f"/nudm-sdm/v2/{s}/sdm-subscriptions", scope="nudm-sdm", body=body)

    def pdu_session(prev: list[Response]) -> Request:  # TS 29.502 §5.2.2.7.2 (home-routed)
        s = _supi_from_auth(prev)
        vsmf = api_root("smf", VISITED_MCC, VISITED_MNC)
        data = {"supi": s, "pei": f"imeisv-35{ue:012d}01", "pduSessionId": psi, "dnn": "internet",
                "sNssai": {"sst": 1, "sd": "000001"}, "vsmfId": VSMF_ID,
                "servingNetwork": plmn, "requestType": "INITIAL_REQUEST", "anType": "3GPP_ACCESS",
                "ratType": "NR",
                "ueLocation": {"nrLocation": {"tai": {"plmnId": plmn, "tac": "000001"},
                                              "ncgi": {"plmnId": plmn, "nrCellId": f"{ue % 2**32:09x}"}}},
                "ueTimeZone": "+01:00",
                "vsmfPduSessionUri": f"{vsmf}/nsmf-pdusession/v1/pdu-sessions/{ue}-{psi}",
                "vcnTunnelInfo": {"ipv4Addr": "10.1.0.1", "gtpTeid": f"{ue:08x}"},
                "n1SmInfoFromUe": {"contentId": "n1SmMsg"}}
        ctype, body = multipart_encode([
            ([("content-type", "application/json")], json.dumps(data).encode()),
            ([("content-type", "application/vnd.3gpp.5gnas"), ("content-id", "n1SmMsg")],
             n1_establishment_request(ue, psi)),
        ], boundary=f"lab-boundary-{ue}-{psi}")
        return _request("POST", "smf", "/nsmf-pdusession/v1/pdu-sessions", scope="nsmf-pdusession",
                        raw=body, content_type=ctype, user_agent="SMF")

    return [
        Step("ue-context-transfer", "Namf_Communication", 200, context_transfer),
        Step("ue-authentication", "Nausf_UEAuthentication", 201, auth),
        Step("5g-aka-confirmation", "Nausf_UEAuthentication", 200, confirm),
        Step("registration-status-update", "Namf_Communication", 200, transfer_update),
        Step("amf-registration", "Nudm_UECM", 201, register, frozenset({200})),
        Step("am-data", "Nudm_SDM", 200, am_data),
        Step("sdm-subscribe", "Nudm_SDM", 201, subscribe),
        Step("pdu-session-create", "Nsmf_PDUSession", 201, pdu_session),
    ]
