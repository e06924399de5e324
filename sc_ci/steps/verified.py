"""What cosign verified for the images of a run, asked once per question for all of them: one `cosign verify`
(or `verify-attestation --type T`) over every image instead of one per image. cosign verifies the images in
the order given and stops at the first that fails (cmd/cosign/cli/verify/verify_attestation.go, the loop over
`images` returns on the first error; each verified image gets a `Verification for REF --` line on stderr
first), so a failure costs one more run for the images after it, and the failing image is verified on its
own (the batch's format detection looks at the first image only, verify.go `GetBundles(images[0])`)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sc_ci.runner import Completed
from sc_ci.signing.signers import Verifier
from sc_ci.tools.cosign import Cosign, SignOptions, payload_format
from sc_ci.tools.cosign_output import decode_statements, payload_digest

if TYPE_CHECKING:
    from sc_ci.engine.context import RunContext

HEADER = re.compile(r"^Verification for (\S+) --\s*$", re.MULTILINE)


@dataclass(frozen=True)
class Answer:
    """cosign's answer for one image: what it verified (image-signature payloads, or decoded statements), or
    None when the batch could not tell (verify this image on its own)."""

    ref: str
    verified: tuple[Mapping[str, object], ...] | None


def _json_documents(text: str) -> list[object]:
    """Every JSON document in `text`, in order (cosign prints one array per verified image)."""
    decoder = json.JSONDecoder()
    found: list[object] = []
    at = 0
    while True:
        while at < len(text) and text[at].isspace():
            at += 1
        if at >= len(text):
            return found
        try:
            document, at = decoder.raw_decode(text, at)
        except ValueError:
            return found
        found.append(document)


def _digest(ref: str) -> str:
    return ref.rpartition("@")[2]


def _run_all(refs: Sequence[str], run: Callable[[Sequence[str]], Completed],
             attribute: Callable[[Sequence[str], Completed], dict[str, tuple[Mapping[str, object], ...]]],
             stopped: Callable[[], bool]) -> dict[str, Answer]:
    answers: dict[str, Answer] = {}
    remaining = list(dict.fromkeys(refs))
    while remaining and not stopped():
        done = run(remaining)
        passed = remaining[:len(HEADER.findall(done.stderr))] if not done.ok else remaining
        for ref, verified in attribute(passed, done).items():
            answers[ref] = Answer(ref, verified)
        if done.ok:
            break
        if len(passed) < len(remaining):
            failing = remaining[len(passed)]
            answers[failing] = Answer(failing, None)  # verified on its own: the precise error (and format)
        remaining = remaining[len(passed) + 1:]
    for ref in refs:
        answers.setdefault(ref, Answer(ref, None))
    return answers


def signatures(ctx: RunContext, key: Verifier, options: SignOptions, refs: Sequence[str]) -> dict[str, Answer]:
    """One `cosign verify` over `refs`: each image's verified image-signature payloads (attestation bundles,
    which cosign verify also accepts, left out; an image whose batch answer holds none is asked on its own)."""
    cosign = ctx.cosign()

    def attribute(passed: Sequence[str], done: Completed) -> dict[str, tuple[Mapping[str, object], ...]]:
        arrays = [d for d in _json_documents(done.stdout) if isinstance(d, list)]
        out: dict[str, tuple[Mapping[str, object], ...]] = {}
        for ref, array in zip(passed, arrays, strict=False):
            mine = tuple(p for p in array if isinstance(p, dict) and payload_digest(p) == _digest(ref)
                         and payload_format(p) is not None)
            if mine:
                out[ref] = mine
        return out

    return _run_all(refs, lambda images: cosign.verify_run(images, key, options, ctx.docker_config), attribute,
                    ctx.closing.is_set)


def attestations(ctx: RunContext, key: Verifier, options: SignOptions, cosign_type: str,
                 refs: Sequence[str]) -> dict[str, Answer]:
    """One `cosign verify-attestation --type T` over `refs`: each image's verified statements (whose subject
    names its digest)."""
    cosign: Cosign = ctx.cosign()

    def attribute(passed: Sequence[str], done: Completed) -> dict[str, tuple[Mapping[str, object], ...]]:
        statements = decode_statements(done.stdout)
        out: dict[str, tuple[Mapping[str, object], ...]] = {}
        for ref in passed:
            digest = _digest(ref)
            mine = tuple(s for s in statements if digest in subject_digests(s))
            if mine:
                out[ref] = mine
        return out

    return _run_all(refs, lambda images: cosign.verify_attestation_run(images, key, cosign_type, options,
                                                                       ctx.docker_config),
                    attribute, ctx.closing.is_set)


def subject_digests(statement: Mapping[str, object]) -> set[str]:
    found: set[str] = set()
    subjects = statement.get("subject")
    for subject in subjects if isinstance(subjects, list) else []:
        digest = subject.get("digest") if isinstance(subject, dict) else None
        if isinstance(digest, dict):
            found |= {f"{k}:{v}" for k, v in digest.items() if isinstance(k, str) and isinstance(v, str)}
    return found


def key_of(key: Verifier, options: SignOptions) -> str:
    """What makes two batch questions the same: the verifier and the Sigstore options."""
    return f"{key!r}|{options!r}"
