"""Which NIST SP 800-218 v1.1 (SSDF) tasks each verify check gives evidence for, with the practice and task
IDs and texts as NIST writes them (https://doi.org/10.6028/NIST.SP.800-218, Table 1). Where the feature
spec's table maps IDs differently (PS.1.1 for SBOMs, PS.3.2 for verification), NIST is followed:
docs/verify.md lists the differences."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Task:
    id: str
    practice: str  # the practice's title, as NIST writes it
    text: str  # the task, as NIST writes it


PRACTICES: Mapping[str, str] = {
    "PO.3": "Implement Supporting Toolchains",
    "PO.4": "Define and Use Criteria for Software Security Checks",
    "PS.2": "Provide a Mechanism for Verifying Software Release Integrity",
    "PS.3": "Archive and Protect Each Software Release",
    "PW.4": "Reuse Existing, Well-Secured Software When Feasible Instead of Duplicating Functionality",
    "RV.1": "Identify and Confirm Vulnerabilities on an Ongoing Basis",
}

TASKS: Mapping[str, Task] = {t.id: t for t in (
    Task("PO.3.3", PRACTICES["PO.3"], "Configure tools to generate artifacts of their support of secure software "
                                      "development practices as defined by the organization."),
    Task("PO.4.1", PRACTICES["PO.4"], "Define criteria for software security checks and track throughout the SDLC."),
    Task("PS.2.1", PRACTICES["PS.2"], "Make software integrity verification information available to software "
                                      "acquirers."),
    Task("PS.3.1", PRACTICES["PS.3"], "Securely archive the necessary files and supporting data (e.g., integrity "
                                      "verification information, provenance data) to be retained for each software "
                                      "release."),
    Task("PS.3.2", PRACTICES["PS.3"], "Collect, safeguard, maintain, and share provenance data for all components "
                                      "of each software release (e.g., in a software bill of materials [SBOM])."),
    Task("PW.4.4", PRACTICES["PW.4"], "Verify that acquired commercial, open-source, and all other third-party "
                                      "software components comply with the requirements, as defined by the "
                                      "organization, throughout their life cycles."),
    Task("RV.1.1", PRACTICES["RV.1"], "Gather information from software acquirers, users, and public sources on "
                                      "potential vulnerabilities in the software and third-party components that "
                                      "the software uses, and investigate all credible reports."),
    Task("RV.1.2", PRACTICES["RV.1"], "Review, analyze, and/or test the software's code to identify or confirm the "
                                      "presence of previously undetected vulnerabilities."),
)}

#: check → the tasks it gives evidence for, and how (shown next to the task in the report).
EVIDENCE: Mapping[str, tuple[tuple[str, str], ...]] = {
    "tag": (("PS.2.1", "the released tag still resolves to the digest whose integrity information is published"),),
    "signature": (("PS.2.1", "each image carries a signature acquirers verify with the published identity"),),
    "sbom": (("PS.3.2", "a signed SBOM of every released image, per format, describing that digest"),),
    "provenance": (("PS.3.2", "signed SLSA provenance naming the source, commit and builder"),
                   ("PO.3.3", "the build platform generated the provenance of its own work")),
    "vuln": (("RV.1.1", "a scan against public vulnerability data, no older than the bound (or repeated today)"),
             ("RV.1.2", "the scan's findings checked against the release's failOn criteria and ignore list"),
             ("PO.4.1", "the failOn threshold is the release's defined criterion, applied at verification too")),
    "upstream": (("PW.4.4", "third-party images the release deploys are scanned against the same criteria"),),
    "archive": (("PS.3.1", "the release manifest and this evidence, with every artifact by digest"),),
}


def mapping() -> list[dict[str, Any]]:
    """The table the reports print: each task with the checks that give evidence for it."""
    rows: dict[str, dict[str, Any]] = {}
    for check, tasks in EVIDENCE.items():
        for task_id, how in tasks:
            task = TASKS[task_id]
            row = rows.setdefault(task_id, {"id": task_id, "practice": task.practice,
                                            "practiceId": task_id.rsplit(".", 1)[0], "task": task.text,
                                            "checks": [], "how": []})
            row["checks"].append(check)
            row["how"].append(how)
    return [rows[k] for k in sorted(rows)]
