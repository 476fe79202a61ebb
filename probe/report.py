"""Verdicts of a probe run: a table on the terminal, JSON, JUnit XML (for CI systems)."""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any
from xml.etree import ElementTree as ET

PASSED, FAILED, NOT_APPLICABLE, ERROR = "passed", "failed", "not applicable", "error"


@dataclass
class Result:
    case: str            # e.g. "4.2.2.7"
    title: str
    clause: str          # what the spec says, with its reference
    verdict: str
    reason: str = ""
    evidence: list[dict[str, Any]] = field(default_factory=list)   # what was sent, what came back
    seconds: float = 0.0


@dataclass
class Report:
    target: str
    results: list[Result] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        out = {PASSED: 0, FAILED: 0, NOT_APPLICABLE: 0, ERROR: 0}
        for r in self.results:
            out[r.verdict] = out.get(r.verdict, 0) + 1
        return out

    @property
    def ok(self) -> bool:
        return all(r.verdict in (PASSED, NOT_APPLICABLE) for r in self.results)

    def by_case(self) -> dict[str, Result]:
        return {r.case: r for r in self.results}

    def failed(self) -> list[str]:
        return [r.case for r in self.results if r.verdict in (FAILED, ERROR)]

    def to_json(self) -> str:
        return json.dumps({"target": self.target, "counts": self.counts(),
                           "results": [asdict(r) for r in self.results]}, indent=2, default=str)

    def table(self) -> str:
        w = max([len(r.case) for r in self.results] + [6])
        lines = [f"{'case':{w}}  {'verdict':15} title / reason", "-" * 100]
        for r in self.results:
            lines.append(f"{r.case:{w}}  {r.verdict:15} {r.title}")
            if r.verdict != PASSED and r.reason:
                lines.append(f"{'':{w}}  {'':15} -> {r.reason}")
                if r.verdict in (FAILED, ERROR):
                    lines.append(f"{'':{w}}  {'':15}    clause: {r.clause}")
        c = self.counts()
        lines.append("-" * 100)
        lines.append(f"{c[PASSED]} passed, {c[FAILED]} failed, {c[ERROR]} errors, "
                     f"{c[NOT_APPLICABLE]} not applicable  (target {self.target})")
        return "\n".join(lines)

    def junit(self) -> str:
        c = self.counts()
        suite = ET.Element("testsuite", name="mitm-sepp probe", tests=str(len(self.results)),
                           failures=str(c[FAILED]), errors=str(c[ERROR]), skipped=str(c[NOT_APPLICABLE]),
                           time=f"{sum(r.seconds for r in self.results):.3f}")
        ET.SubElement(ET.SubElement(suite, "properties"), "property", name="target", value=self.target)
        for r in self.results:
            tc = ET.SubElement(suite, "testcase", classname="scas", name=f"{r.case} {r.title}", time=f"{r.seconds:.3f}")
            detail = json.dumps(r.evidence, indent=2, default=str)
            if r.verdict == FAILED:
                ET.SubElement(tc, "failure", message=f"{r.reason} ({r.clause})").text = detail
            elif r.verdict == ERROR:
                ET.SubElement(tc, "error", message=r.reason).text = detail
            elif r.verdict == NOT_APPLICABLE:
                ET.SubElement(tc, "skipped", message=r.reason)
        return ET.tostring(suite, encoding="unicode", xml_declaration=True)
