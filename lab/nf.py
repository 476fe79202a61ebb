"""The home PLMN's network functions (default 999/70) as one HTTP/2 server for the roaming lab.

* AUSF  Nausf_UEAuthentication (TS 29.509 §5.2.2.2): 5G AKA with real MILENAGE vectors.
* UDM   Nudm_UEAU (TS 29.503 §5.4), Nudm_UECM (§5.3), Nudm_SDM (§5.2).
* H-SMF Nsmf_PDUSession Create (TS 29.502 §5.2.2.7), multipart/related with N1 SM parts.
* AMF   Namf_Communication (TS 29.518 §5.2.2.2): the old AMF of a UE that left its home PLMN,
        UEContextTransfer by 5G-GUTI (multipart with the REGISTRATION REQUEST, checked against
        the GUTI) and RegistrationStatusUpdate.

Responses are schema-valid per lab/openapi and deterministic per UE and per server run.
Errors are ProblemDetails (TS 29.500 §5.2.7). Every response carries a ``server: <NF>-lab-1.0``
header on purpose (topology hiding, TS 33.501 §13.1.2, must strip it). Every request is recorded
(``GET /_lab/received``, ``POST /_lab/reset``, ``--record FILE`` as JSON lines).

    python -m lab.nf --host 127.0.0.1 --port 8080 [--tls-cert C --tls-key K] [--plmn 999-70] [--record F]
"""
from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import json
import re
import time
import urllib.parse
import uuid
from collections import deque
from pathlib import Path
from typing import Any, Callable

from lab import h2server, scenario
from lab.h2server import Headers

Reply = tuple[int, Headers, bytes]
SNN_RE = re.compile(r"^5G:mnc[0-9]{3}[.]mcc[0-9]{3}[.]3gppnetwork[.]org$")
SUCI_NULL_RE = re.compile(r"^suci-0-(\d{3})-(\d{2,3})-\d{1,4}-0-0-(\d+)$")


class ProblemError(Exception):
    def __init__(self, status: int, cause: str, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.status, self.cause, self.detail, self.extra = status, cause, detail, extra


def _json(body: bytes) -> dict:
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError) as e:
        raise ProblemError(400, "INVALID_MSG_FORMAT", f"malformed JSON body: {e}") from None
    if not isinstance(doc, dict):
        raise ProblemError(400, "INVALID_MSG_FORMAT", "the JSON body is not an object")
    return doc


def _require(doc: dict, *names: str) -> None:
    missing = [n for n in names if n not in doc]
    if missing:
        raise ProblemError(400, "MANDATORY_IE_MISSING", f"missing: {', '.join(missing)}",
                           invalidParams=[{"param": f"/{n}", "reason": "mandatory IE missing"} for n in missing])


def _json_and_parts(h: Headers, body: bytes) -> tuple[dict, dict[str, bytes]]:
    """The JSON object of an ``application/json`` body or of the root part of a
    ``multipart/related`` one (TS 29.500 §6.1.2.4), and the binary parts by Content-ID."""
    ctype = next((v for k, v in h if k == "content-type"), "")
    media = h2server.media_type(ctype)[0]
    if media == "application/json":
        return _json(body), {}
    if media != "multipart/related":
        raise ProblemError(415, "UNSUPPORTED_MEDIA_TYPE", f"content-type {ctype!r}")
    try:
        decoded = h2server.multipart_decode(ctype, body)
    except ValueError as e:
        raise ProblemError(400, "INVALID_MSG_FORMAT", f"multipart: {e}") from None
    parts = {next((v for k, v in ph if k == "content-id"), "").strip("<>"): c for ph, c in decoded[1:]}
    return _json(decoded[0][1]), parts


class HomeNfs:
    """State and handlers of the home AUSF, UDM and H-SMF. ``handle`` is an h2server handler."""

    def __init__(self, plmn: str = f"{scenario.HOME_MCC}-{scenario.HOME_MNC}", record: Path | None = None,
                 max_records: int = 100_000) -> None:
        self.mcc, self.mnc = plmn.split("-")
        self.record_file = record.open("a", encoding="utf-8") if record else None
        self.received: deque[dict] = deque(maxlen=max_records)
        self.routes: list[tuple[str, re.Pattern, str, Callable[..., Reply]]] = [
            ("POST", re.compile(r"/nausf-auth/v1/ue-authentications"), "AUSF", self.ausf_authenticate),
            ("PUT", re.compile(r"/nausf-auth/v1/ue-authentications/(?P<ctx>[^/]+)/5g-aka-confirmation"),
             "AUSF", self.ausf_confirm),
            ("POST", re.compile(r"/nudm-ueau/v1/(?P<ue>[^/]+)/security-information/generate-auth-data"),
             "UDM", self.udm_generate_auth_data),
            ("PUT", re.compile(r"/nudm-uecm/v1/(?P<ue>[^/]+)/registrations/amf-3gpp-access"), "UDM",
             self.udm_register),
            ("GET", re.compile(r"/nudm-sdm/v2/(?P<ue>[^/]+)/am-data"), "UDM", self.sdm_am_data),
            ("GET", re.compile(r"/nudm-sdm/v2/(?P<ue>[^/]+)/nssai"), "UDM", self.sdm_nssai),
            ("GET", re.compile(r"/nudm-sdm/v2/(?P<ue>[^/]+)"), "UDM", self.sdm_datasets),
            ("POST", re.compile(r"/nudm-sdm/v2/(?P<ue>[^/]+)/sdm-subscriptions"), "UDM", self.sdm_subscribe),
            ("POST", re.compile(r"/nsmf-pdusession/v1/pdu-sessions"), "SMF", self.smf_create),
            ("POST", re.compile(r"/namf-comm/v1/ue-contexts/(?P<ue>[^/]+)/transfer"), "AMF", self.amf_transfer),
            ("POST", re.compile(r"/namf-comm/v1/ue-contexts/(?P<ue>[^/]+)/transfer-update"), "AMF",
             self.amf_transfer_update),
            ("GET", re.compile(r"/nnrf-disc/v1/nf-instances"), "NRF", self.nrf_discover),
            # the visited side runs this module too (--plmn 001-01): its AMF / V-SMF callbacks
            ("POST", re.compile(r"/namf-callback/v1/(?P<rest>.+)"), "AMF", self.callback),
            ("POST", re.compile(r"/nsmf-pdusession/v1/pdu-sessions/(?P<rest>.+)"), "SMF", self.callback),
        ]
        self.reset()

    def reset(self) -> None:
        self.received.clear()
        self.sqn: dict[str, int] = {}             # UDM/ARPF SQN per SUPI (SEQ only, IND = 0)
        self.auth_ctx: dict[str, dict] = {}       # AUSF contexts by authCtxId
        self.amf_regs: dict[str, dict] = {}
        self.sdm_subs: dict[str, dict] = {}
        self.sessions: dict[str, dict] = {}
        self.transfers: dict[str, str] = {}       # old AMF: GUTI -> SUPI of contexts being transferred

    def close(self) -> None:
        if self.record_file:
            self.record_file.close()
            self.record_file = None

    # ------------------------------------------------------------------ plumbing
    def root(self, nf: str) -> str:
        return scenario.api_root(nf, self.mcc, self.mnc)

    def home_supi(self, ue_id: str) -> str:
        """SUPI of a home subscriber from a SUPI or null-scheme SUCI; ProblemError 404 otherwise."""
        ue_id = urllib.parse.unquote(ue_id)
        m = SUCI_NULL_RE.match(ue_id)
        s = f"imsi-{m[1]}{m[2]}{m[3]}" if m else ue_id
        if not re.fullmatch(rf"imsi-{self.mcc}{self.mnc}\d{{{15 - len(self.mcc + self.mnc)}}}", s):
            raise ProblemError(404, "USER_NOT_FOUND", f"no subscriber {ue_id} in PLMN {self.mcc}-{self.mnc}")
        return s

    def _record(self, method: str, path: str, query: str, headers: Headers, body: bytes) -> None:
        rec = {"time": time.time(), "method": method, "path": path, "query": query,
               "headers": [list(h) for h in headers], "body": base64.b64encode(body).decode()}
        self.received.append(rec)
        if self.record_file:
            self.record_file.write(json.dumps(rec) + "\n")
            self.record_file.flush()

    async def handle(self, method: str, path: str, query: str, headers: Headers, body: bytes) -> Reply:
        if path == "/_lab/received" and method == "GET":
            return 200, [("content-type", "application/json")], json.dumps(list(self.received)).encode()
        if path == "/_lab/reset" and method == "POST":
            self.reset()
            return 204, [], b""
        self._record(method, path, query, headers, body)
        nf, allowed = "NF", []
        try:
            for m, rx, nf_name, fn in self.routes:
                match = rx.fullmatch(path)
                if not match:
                    continue
                nf = nf_name
                if m != method:
                    allowed.append(m)
                    continue
                try:
                    status, rsp_headers, rsp_body = fn(match, urllib.parse.parse_qs(query), headers, body)
                except (KeyError, TypeError, ValueError, AttributeError) as e:  # an IE of the wrong shape
                    raise ProblemError(400, "INVALID_MSG_FORMAT", f"{type(e).__name__}: {e}") from None
                break
            else:
                if allowed:
                    raise ProblemError(405, "METHOD_NOT_ALLOWED", f"{method} not allowed on {path}")
                raise ProblemError(404, "RESOURCE_URI_STRUCTURE_NOT_FOUND", f"no resource {path}")
        except ProblemError as e:
            status, rsp_headers, rsp_body = h2server.problem(e.status, e.cause, e.detail, **e.extra)
            if status == 405:
                rsp_headers.append(("allow", ", ".join(allowed)))
        return status, [("server", f"{nf}-lab-1.0")] + rsp_headers, rsp_body

    @staticmethod
    def _ok(status: int, doc: Any, location: str | None = None, ctype: str = "application/json") -> Reply:
        headers = [("content-type", ctype)] + ([("location", location)] if location else [])
        return status, headers, json.dumps(doc).encode()

    # ------------------------------------------------------------------ UDM / ARPF (TS 29.503)
    def _auth_vector(self, s: str, snn: str) -> dict[str, bytes]:
        n = self.sqn[s] = self.sqn.get(s, 0) + 1
        rand = hashlib.sha256(f"mitm-sepp lab RAND|{s}|{n}".encode()).digest()[:16]
        return scenario.home_auth_vector(s, snn, rand, (n << 5).to_bytes(6, "big"))

    def _check_snn(self, snn: Any) -> str:
        if not isinstance(snn, str) or not SNN_RE.match(snn):
            raise ProblemError(403, "SERVING_NETWORK_NOT_AUTHORIZED", f"serving network name {snn!r}")
        return snn

    def udm_generate_auth_data(self, m: re.Match, q: dict, h: Headers, body: bytes) -> Reply:
        req = _json(body)
        _require(req, "servingNetworkName", "ausfInstanceId")
        s = self.home_supi(m["ue"])
        av = self._auth_vector(s, self._check_snn(req["servingNetworkName"]))
        return self._ok(200, {"authType": "5G_AKA", "supi": s, "authenticationVector": {
            "avType": "5G_HE_AKA", "rand": av["rand"].hex(), "xresStar": av["xres_star"].hex(),
            "autn": av["autn"].hex(), "kausf": av["kausf"].hex()}})

    def udm_register(self, m: re.Match, q: dict, h: Headers, body: bytes) -> Reply:
        reg = _json(body)
        _require(reg, "amfInstanceId", "deregCallbackUri", "guami", "ratType")
        s = self.home_supi(m["ue"])
        existed = s in self.amf_regs
        self.amf_regs[s] = reg
        if existed:
            return self._ok(200, reg)
        return self._ok(201, reg, f"{self.root('udm')}/nudm-uecm/v1/{s}/registrations/amf-3gpp-access")

    def _am_data(self, s: str) -> dict:
        msin = s[-10:]
        return {"gpsis": [f"msisdn-{self.mcc}{self.mnc}{msin[-8:]}"],
                "subscribedUeAmbr": {"uplink": "1 Gbps", "downlink": "2 Gbps"},
                "nssai": self._nssai(), "ratRestrictions": [], "routingIndicator": "0",
                "subscribedDnnList": ["internet", "ims"], "micoAllowed": False,
                "rfspIndex": 1, "subsRegTimer": 3240}

    @staticmethod
    def _nssai() -> dict:
        return {"defaultSingleNssais": [{"sst": 1, "sd": "000001"}],
                "singleNssais": [{"sst": 1, "sd": "000001"}, {"sst": 2}]}

    def _plmn_query(self, q: dict) -> None:
        for raw in q.get("plmn-id", []):
            try:
                plmn = json.loads(raw)
                assert isinstance(plmn, dict) and "mcc" in plmn and "mnc" in plmn
            except (ValueError, AssertionError):
                raise ProblemError(400, "INVALID_QUERY_PARAM", "plmn-id is not a JSON PlmnIdNid",
                                   invalidParams=[{"param": "plmn-id"}]) from None

    def sdm_am_data(self, m: re.Match, q: dict, h: Headers, body: bytes) -> Reply:
        s = self.home_supi(m["ue"])
        self._plmn_query(q)
        return self._ok(200, self._am_data(s))

    def sdm_nssai(self, m: re.Match, q: dict, h: Headers, body: bytes) -> Reply:
        self.home_supi(m["ue"])
        self._plmn_query(q)
        return self._ok(200, self._nssai())

    def sdm_datasets(self, m: re.Match, q: dict, h: Headers, body: bytes) -> Reply:
        s = self.home_supi(m["ue"])
        names = ",".join(q.get("dataset-names", [])).split(",")
        if len([n for n in names if n]) < 2:
            raise ProblemError(400, "INVALID_QUERY_PARAM", "dataset-names needs at least two names",
                               invalidParams=[{"param": "dataset-names"}])
        out: dict[str, Any] = {}
        if "AM" in names:
            out["amData"] = self._am_data(s)
        if "SMF_SEL" in names:
            out["smfSelData"] = {"subscribedSnssaiInfos": {
                "1-000001": {"dnnInfos": [{"dnn": "internet", "defaultDnnIndicator": True}]},
                "2": {"dnnInfos": [{"dnn": "ims"}]}}}
        return self._ok(200, out)

    def sdm_subscribe(self, m: re.Match, q: dict, h: Headers, body: bytes) -> Reply:
        sub = _json(body)
        _require(sub, "nfInstanceId", "callbackReference", "monitoredResourceUris")
        s = self.home_supi(m["ue"])
        sid = str(uuid.uuid5(scenario.LAB_NS, f"sdm-sub/{s}/{len(self.sdm_subs)}"))
        sub = {**sub, "subscriptionId": sid}
        self.sdm_subs[sid] = sub
        return self._ok(201, sub, f"{self.root('udm')}/nudm-sdm/v2/{s}/sdm-subscriptions/{sid}")

    # ------------------------------------------------------------------ NRF (TS 29.510)
    NF_TYPES = {"AUSF": ("ausf", "nausf-auth", "v1", "1.2.0", 12),
                "UDM": ("udm", "nudm-sdm", "v2", "2.2.0", 13),
                "SMF": ("smf", "nsmf-pdusession", "v1", "1.2.0", 14)}

    def nrf_discover(self, m: re.Match, q: dict, h: Headers, body: bytes) -> Reply:
        """Nnrf_NFDiscovery NFDiscover (TS 29.510 §5.3.2.2): one profile of the requested type, with
        its FQDN and an IP address (both for the SEPPs to hide / make telescopic)."""
        for name in ("target-nf-type", "requester-nf-type"):
            if not q.get(name):
                raise ProblemError(400, "MANDATORY_QUERY_PARAM_MISSING", f"{name} is required",
                                   invalidParams=[{"param": name, "reason": "missing"}])
        nf_type = q["target-nf-type"][0]
        if nf_type not in self.NF_TYPES:
            return self._ok(200, {"validityPeriod": 3600, "nfInstances": []})
        label, service, ver, full, host = self.NF_TYPES[nf_type]
        fqdn = f"{label}.5gc.mnc{self.mnc.zfill(3)}.mcc{self.mcc}.3gppnetwork.org"
        ip = f"10.{int(self.mnc)}.0.{host}"
        nf_id = str(uuid.uuid5(scenario.LAB_NS, f"{label}.{self.mcc}-{self.mnc}"))
        profile = {
            "nfInstanceId": nf_id, "nfType": nf_type, "nfStatus": "REGISTERED",
            "plmnList": [{"mcc": self.mcc, "mnc": self.mnc}], "fqdn": fqdn, "ipv4Addresses": [ip],
            "nfServices": [{
                "serviceInstanceId": f"{service}-1", "serviceName": service,
                "versions": [{"apiVersionInUri": ver, "apiFullVersion": full}],
                "scheme": "https", "nfServiceStatus": "REGISTERED", "fqdn": fqdn,
                "ipEndPoints": [{"ipv4Address": ip, "transport": "TCP", "port": 443}]}],
        }
        return self._ok(200, {"validityPeriod": 3600, "nfInstances": [profile]})

    def callback(self, m: re.Match, q: dict, h: Headers, body: bytes) -> Reply:
        """A notification to one of our callback URIs: recorded (``/_lab/received``), 204."""
        return 204, [], b""

    # ------------------------------------------------------------------ AUSF (TS 29.509)
    def ausf_authenticate(self, m: re.Match, q: dict, h: Headers, body: bytes) -> Reply:
        req = _json(body)
        _require(req, "supiOrSuci", "servingNetworkName")
        snn = self._check_snn(req["servingNetworkName"])
        s = self.home_supi(str(req["supiOrSuci"]))
        av = self._auth_vector(s, snn)  # the AUSF's Nudm_UEAU call, done in-process
        ctx_id = str(uuid.uuid5(scenario.LAB_NS, f"ausf-ctx/{s}/{self.sqn[s]}"))
        self.auth_ctx[ctx_id] = {"supi": s, "xres_star": av["xres_star"], "kseaf": av["kseaf"]}
        loc = f"{self.root('ausf')}/nausf-auth/v1/ue-authentications/{ctx_id}"
        return self._ok(201, {"authType": "5G_AKA", "servingNetworkName": snn,
                              "5gAuthData": {"rand": av["rand"].hex(), "autn": av["autn"].hex(),
                                             "hxresStar": av["hxres_star"].hex()},
                              "_links": {"5g-aka": {"href": f"{loc}/5g-aka-confirmation"}}},
                        loc, "application/3gppHal+json")

    def ausf_confirm(self, m: re.Match, q: dict, h: Headers, body: bytes) -> Reply:
        req = _json(body)
        _require(req, "resStar")
        ctx = self.auth_ctx.pop(m["ctx"], None)
        if ctx is None:
            raise ProblemError(404, "CONTEXT_NOT_FOUND", f"no authentication context {m['ctx']}")
        if str(req["resStar"]).lower() != ctx["xres_star"].hex():
            return self._ok(200, {"authResult": "AUTHENTICATION_FAILURE"})
        return self._ok(200, {"authResult": "AUTHENTICATION_SUCCESS", "supi": ctx["supi"],
                              "kseaf": ctx["kseaf"].hex()})

    # ------------------------------------------------------------------ old AMF (TS 29.518)
    def _guti_supi(self, ue_id: str) -> str:
        """SUPI of the UE our AMF gave ``ue_id`` (a 5G-GUTI of this PLMN); ProblemError 404 otherwise."""
        ue_id = urllib.parse.unquote(ue_id)
        m = re.fullmatch(rf"5g-guti-{self.mcc}{self.mnc}{scenario.OLD_AMF_ID}([0-9a-f]{{8}})", ue_id)
        if not m:
            raise ProblemError(404, "CONTEXT_NOT_FOUND", f"no UE context {ue_id} at this AMF")
        return self.home_supi(scenario.supi(int(m[1], 16), self.mcc, self.mnc))

    def amf_transfer(self, m: re.Match, q: dict, h: Headers, body: bytes) -> Reply:
        """UEContextTransfer (TS 29.518 §5.2.2.2.2): for INIT_REG the old AMF checks the
        REGISTRATION REQUEST it gets in ``regRequest`` names the same 5G-GUTI (TS 23.502 4.2.2.2.2
        step 4), then returns the UE context with the SEAF data (K_AMF) and the NAS security mode."""
        s = self._guti_supi(m["ue"])
        data, parts = _json_and_parts(h, body)
        _require(data, "reason", "accessType")
        if data["reason"] == "INIT_REG":
            ref = (data.get("regRequest") or {}).get("n1MessageContent", {}).get("contentId")
            if ref not in parts:
                raise ProblemError(400, "MANDATORY_IE_MISSING", "INIT_REG without the REGISTRATION REQUEST part",
                                   invalidParams=[{"param": "/regRequest"}])
            try:
                named = scenario.guti_of_registration_request(parts[ref])
            except ValueError as e:
                raise ProblemError(403, "INTEGRITY_CHECK_FAIL", str(e)) from None
            if named != urllib.parse.unquote(m["ue"]):
                raise ProblemError(403, "INTEGRITY_CHECK_FAIL", f"the REGISTRATION REQUEST names {named}")
        self.transfers[urllib.parse.unquote(m["ue"])] = s
        ue = int(s[-10:])
        k_amf = hashlib.sha256(f"mitm-sepp lab K_AMF|{s}".encode()).hexdigest()
        return self._ok(200, {"ueContext": {
            "supi": s, "supiUnauthInd": False, "pei": f"imeisv-35{ue:012d}01",
            "gpsiList": [f"msisdn-{self.mcc}{self.mnc}{s[-8:]}"],
            "seafData": {"ngKsi": {"tsc": "NATIVE", "ksi": 1}, "keyAmf": {"keyType": "KAMF", "keyVal": k_amf},
                         "nh": hashlib.sha256(f"mitm-sepp lab NH|{s}".encode()).hexdigest(), "ncc": 1},
            "mmContextList": [{"accessType": "3GPP_ACCESS",
                               "nasSecurityMode": {"integrityAlgorithm": "NIA2", "cipheringAlgorithm": "NEA2"},
                               "nasDownlinkCount": 4, "nasUplinkCount": 7,
                               "allowedNssai": self._nssai()["singleNssais"]}]}})

    def amf_transfer_update(self, m: re.Match, q: dict, h: Headers, body: bytes) -> Reply:
        """RegistrationStatusUpdate (TS 29.518 §5.2.2.2.3): the new AMF took the UE; the context
        transferred to it is released here."""
        self._guti_supi(m["ue"])
        req = _json(body)
        _require(req, "transferStatus")
        if self.transfers.pop(urllib.parse.unquote(m["ue"]), None) is None:
            raise ProblemError(404, "CONTEXT_NOT_FOUND", f"no transfer of {m['ue']} in progress")
        return self._ok(200, {"regStatusTransferComplete": req["transferStatus"] == "TRANSFERRED"})

    # ------------------------------------------------------------------ H-SMF (TS 29.502)
    def smf_create(self, m: re.Match, q: dict, h: Headers, body: bytes) -> Reply:
        data, parts = _json_and_parts(h, body)
        _require(data, "dnn", "servingNetwork", "anType")
        s = self.home_supi(str(data.get("supi", "")))
        ref = data.get("n1SmInfoFromUe", {}).get("contentId")
        if ref is None or ref not in parts:
            raise ProblemError(400, "N1_SM_ERROR", "n1SmInfoFromUe does not reference a binary part",
                               invalidParams=[{"param": "/n1SmInfoFromUe"}])
        n1 = parts[ref]
        if len(n1) < 4 or n1[0] != 0x2E or n1[3] != 0xC1:
            raise ProblemError(403, "N1_SM_ERROR", "N1 SM part is not a PDU SESSION ESTABLISHMENT REQUEST")
        ue, psi, pti = int(s[-10:]), int(data.get("pduSessionId", n1[1])), n1[2]
        ipv4 = f"10.45.{(ue >> 8) & 0xFF}.{ue & 0xFF}"
        ref_id = f"{s}-{psi}-{len(self.sessions)}"
        created = {"pduSessionType": "IPV4", "sscMode": "1", "pduSessionId": psi,
                   "sNssai": data.get("sNssai", {"sst": 1, "sd": "000001"}),
                   "hcnTunnelInfo": {"ipv4Addr": "10.70.0.1", "gtpTeid": f"{0x70000000 + ue & 0xFFFFFFFF:08x}"},
                   "sessionAmbr": {"uplink": "200 Mbps", "downlink": "500 Mbps"},
                   "qosFlowsSetupList": [{"qfi": 1, "qosRules": base64.b64encode(b"\x01\x00\x06\x31\x01\x01\xff\x01\x09").decode(),
                                          "qosFlowProfile": {"5qi": 9, "arp": {"priorityLevel": 8,
                                                             "preemptCap": "NOT_PREEMPT",
                                                             "preemptVuln": "PREEMPTABLE"}}}],
                   "hSmfInstanceId": str(uuid.uuid5(scenario.LAB_NS, f"smf.{self.mcc}-{self.mnc}")),
                   "ueIpv4Address": ipv4, "n1SmInfoToUe": {"contentId": "n1SmMsgToUe"},
                   "upSecurity": {"upIntegr": "NOT_NEEDED", "upConfid": "NOT_NEEDED"}}
        self.sessions[ref_id] = {"create": data, "created": created}
        ctype_out, out = h2server.multipart_encode([
            ([("content-type", "application/json")], json.dumps(created).encode()),
            ([("content-type", "application/vnd.3gpp.5gnas"), ("content-id", "n1SmMsgToUe")],
             scenario.n1_establishment_accept(ue, psi, pti, ipv4)),
        ], boundary=f"h-smf-{hashlib.sha256(ref_id.encode()).hexdigest()[:16]}")  # no SUPI in the clear header
        return 201, [("content-type", ctype_out),
                     ("location", f"{self.root('smf')}/nsmf-pdusession/v1/pdu-sessions/{ref_id}")], out


async def main_async(args: argparse.Namespace) -> None:
    nfs = HomeNfs(args.plmn, args.record)
    ctx = h2server.server_ssl_context(args.tls_cert, args.tls_key) if args.tls_cert else None
    server = await h2server.serve(nfs.handle, args.host, args.port, ctx, h2c_only=args.h2c_only)
    print(f"lab.nf: home NFs of PLMN {args.plmn} on {'https' if ctx else 'http'}://{args.host}:"
          f"{h2server.bound_port(server)}{' (HTTP/2 prior knowledge only)' if args.h2c_only else ''}", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await h2server.stop(server)
        nfs.close()


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--tls-cert")
    ap.add_argument("--tls-key")
    ap.add_argument("--plmn", default=f"{scenario.HOME_MCC}-{scenario.HOME_MNC}", help="home PLMN, mcc-mnc")
    ap.add_argument("--record", type=Path, help="append every received request to FILE as JSON lines")
    ap.add_argument("--h2c-only", action="store_true",
                    help="cleartext HTTP/2 with prior knowledge only, HTTP/1.1 refused (as open5gs NFs)")
    args = ap.parse_args(argv)
    if bool(args.tls_cert) != bool(args.tls_key):
        ap.error("--tls-cert and --tls-key go together")
    if args.h2c_only and args.tls_cert:
        ap.error("--h2c-only is cleartext: no --tls-cert")
    try:
        asyncio.run(main_async(args))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
