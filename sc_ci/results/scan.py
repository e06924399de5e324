"""What a scan of one manifest produced: the merged findings, the gate's verdict, the scanners' own reports."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from sc_ci.scan.gate import Verdict
from sc_ci.scan.merge import MergeResult


@dataclass(frozen=True)
class ImageScan:
    """The payload of one scan result: the merged findings of one manifest and the gate's verdict."""

    target: str
    merged: MergeResult
    verdict: Verdict
    raw: Mapping[str, bytes]  # scanner → its JSON report, as it printed it (for DefectDojo, the cache)
    started: datetime
    finished: datetime
