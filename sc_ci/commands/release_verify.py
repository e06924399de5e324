"""`sc-ci release verify`: every image of a release, by digest, against the expected signer, SBOMs, provenance
and scan — the engine running the verify steps — with the evidence report (`--evidence DIR`)."""

from __future__ import annotations

import argparse
import dataclasses
import sys
from collections.abc import Mapping
from pathlib import Path

from sc_ci.ci.interface import Platform
from sc_ci.commands import common
from sc_ci.engine import run as engine_run
from sc_ci.engine.context import RunOptions
from sc_ci.engine.plan import Request
from sc_ci.engine.policy import Policy
from sc_ci.errors import UsageError
from sc_ci.report import evidence, evidence_text, github
from sc_ci.report import publish as publishing
from sc_ci.session import Session, open_session
from sc_ci.steps.registry import VERIFY_SIDE, VSA
from sc_ci.verify import manifest as manifest_io
from sc_ci.verify import setup
from sc_ci.verify.manifest import ReleaseRecord

EPILOG = """examples:
  sc-ci release verify --manifest out/release.json --key cosign.pub --evidence evidence/
  sc-ci release verify --manifest release.json \\
      --certificate-identity https://github.com/acme/shop/.github/workflows/release.yml@refs/tags/v1.4.0 \\
      --certificate-oidc-issuer https://token.actions.githubusercontent.com \\
      --source-repo https://github.com/acme/shop --source-ref refs/tags/v1.4.0 --runner-environment github-hosted
  sc-ci release verify -s shop -e production --version 1.4.0 --key cosign.pub --max-scan-age 3d
  sc-ci release verify --manifest release.json --key cosign.pub --rescan --fail-on high
every image of the release, by digest: the recorded tag still points at it; its signature by the expected key
or keyless identity (with the Fulcio certificate extensions pinned); each SBOM attestation; the SLSA provenance
(builder, source, commit, ref) and the SLSA Build level it reaches; the signed scan (no older than
--max-scan-age, nothing at or above failOn). Expectations come from the flags, then the config (signing.verify,
verify), then what release.json recorded (untrusted: the evidence says where each came from). Nothing is
written to the registry. exit 0 all verified, 1 a check failed, 2 usage or configuration errors."""


def register(rel_sub: argparse._SubParsersAction[common.Parser]) -> None:
    p = common.add_subparser(rel_sub, "verify", "verify every image of a release; the compliance evidence", EPILOG)
    expectation_flags(p)
    p.add_argument("--max-scan-age", metavar="AGE", help="oldest scan accepted: 30m, 36h, 7d, 2w (default 7d)")
    p.add_argument("--fail-on", help="severity at or above which a finding fails (default: the release's failOn)")
    p.add_argument("--rescan", action="store_true", default=None, help="scan again with today's DB")
    p.add_argument("--evidence", metavar="DIR", help="write evidence.json, evidence.md, evidence.html here")
    p.add_argument("--attest-vsa", action="store_true",
                   help="attach a signed SLSA Verification Summary Attestation to each image (signed as "
                        "security.signing says: its key, or keyless in CI; or --vsa-key)")
    p.add_argument("--vsa-key", metavar="KEY", help="private key for --attest-vsa: file, env://VAR or KMS URI")
    common.tlog(p)
    common.common(p)
    p.set_defaults(run=verify)


def expectation_flags(p: common.Parser) -> None:
    """What both `release verify` and `release policy` read: the release, the signer, the build facts."""
    p.add_argument("-m", "--manifest", metavar="RELEASE.json",
                   help="the release manifest release create wrote (default ./release.json when no image is given)")
    common.images(p)
    p.add_argument("--version", dest="image_version", help="the release version (with -s/-e: the images' tag)")
    p.add_argument("--registry", help="registry/prefix of the images the stack builds")
    p.add_argument("-k", "--key", help="public key: file, env://VAR or KMS URI (key-signed releases)")
    common.certificate_identity(p)
    p.add_argument("--source-repo", metavar="URL", help="source repository (certificate and provenance)")
    p.add_argument("--source-ref", metavar="REF", help="source ref, e.g. refs/tags/v1.4.0 (certificate, provenance)")
    p.add_argument("--git-sha", metavar="SHA", help="source commit (certificate and provenance)")
    p.add_argument("--builder-id", metavar="URI", help="the provenance's runDetails.builder.id")
    p.add_argument("--build-signer", metavar="URI", help="keyless: Fulcio Build Signer URI (the signing workflow)")
    p.add_argument("--runner-environment", choices=("github-hosted", "self-hosted"),
                   help="keyless: Fulcio Runner Environment")
    p.add_argument("--trusted-builder", dest="trusted_builders", action="append", default=[], metavar="GLOB",
                   help="an isolated builder whose keyless provenance reaches SLSA Build L3 (repeatable)")
    p.add_argument("--sbom-format", dest="sbom_formats", action="append", default=[],
                   choices=("cyclonedx-json", "spdx-json", "syft-json"), help="SBOM formats required (repeatable)")


def given(args: argparse.Namespace) -> setup.Given:
    if args.key and any((args.certificate_identity, args.certificate_identity_regexp,
                         args.certificate_oidc_issuer, args.certificate_oidc_issuer_regexp)):
        raise UsageError("--key and --certificate-* exclude each other",
                         fix="Verify a key-signed release with --key PUB, a keyless one with "
                             "--certificate-identity[-regexp] and --certificate-oidc-issuer[-regexp].")
    return setup.Given(args.key, args.certificate_identity, args.certificate_identity_regexp,
                       args.certificate_oidc_issuer, args.certificate_oidc_issuer_regexp, args.source_repo,
                       args.source_ref, args.git_sha, args.builder_id, args.build_signer, args.runner_environment,
                       tuple(args.trusted_builders), getattr(args, "max_scan_age", None),
                       getattr(args, "fail_on", None), getattr(args, "rescan", None),
                       tuple(args.sbom_formats))


def record_of(args: argparse.Namespace) -> ReleaseRecord | None:
    if args.manifest:
        return manifest_io.load(Path(args.manifest))
    if args.images or args.stack:
        return None
    default = Path(setup.MANIFEST)
    if not default.exists() and not default.is_symlink():
        raise UsageError("nothing to verify: no release.json here and no image given",
                         fix="sc-ci release verify --manifest out/release.json   (what release create --output "
                             "wrote), or --image REF / -s STACK -e ENV --version V")
    return manifest_io.load(default)


def session_of(args: argparse.Namespace, env: Mapping[str, str], record: ReleaseRecord | None) -> Session:
    flags: dict[str, object] = {"signing.enabled": False, "scan.upload.defectdojo.enabled": False}
    for attr, key in (("registry", "registry"), ("image_version", "version")):
        if getattr(args, attr, None):
            flags[key] = getattr(args, attr)
    if args.tlog is not None:
        flags["signing.sigstore.transparencyLog"] = args.tlog
    if getattr(args, "vsa_key", None):
        if not args.attest_vsa:
            raise UsageError("--vsa-key without --attest-vsa", fix="Add --attest-vsa, or drop --vsa-key.")
        flags["signing.privateKey"] = args.vsa_key
    session = open_session(args, env, flags, need_images=record is None)
    if record is None:
        return session
    images = tuple(i.ref for i in record.images)
    upstream = frozenset(i.ref.by_digest for i in record.images if not i.built)
    return dataclasses.replace(session, images=images, upstream=upstream, _resolved=None)


def verify(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    record = record_of(args)
    session = session_of(args, env, record)
    expectations = setup.expectations(session, given(args), record)
    steps = (["scan"] if expectations.rescan else []) + list(VERIFY_SIDE) + ([VSA] if args.attest_vsa else [])
    as_given = {i.ref.by_digest: i.given for i in record.images} if record else {}
    services = {i.ref.by_digest: i.service for i in record.images if i.service} if record else {}
    request = Request(steps, Policy.closed(), upstream=session.upstream, given=as_given, services=services)
    options = RunOptions(expectations=expectations, attest_vsa=args.attest_vsa)
    release = engine_run.execute(session, request, options, session.loaded.runtime.cache_dir)
    if release.dry_run:
        print("dry run: nothing was verified; the verify steps would check each image:")
        for command in release.commands:
            print(f"  {command.step:<18} " + " ".join(command.argv))
        return 0
    manifest = {"name": Path(record.path).name, "sha256": record.sha256} if record else None
    data = evidence.build(release, expectations, manifest)
    paths = evidence.write(Path(args.evidence), data) if args.evidence else {}
    publish(session, data, paths)
    return int(data["verdict"]["exitCode"])


def publish(session: Session, data: Mapping[str, object], paths: Mapping[str, str]) -> None:
    """Console, GitHub outputs / job summary / annotations, GitLab dotenv: only reporters write."""
    print(evidence_text.console(data), flush=True)
    verdict = data["verdict"]
    assert isinstance(verdict, Mapping)
    outputs = {"verified": "true" if verdict["status"] == "verified" else "false",
               "slsa-level": str(data["slsa"]["minimumLevel"]),  # type: ignore[index]
               **paths}
    ci = session.ci
    if ci.platform is Platform.GITHUB:
        failures = [(f"{check['check']} {image['digest']}", (check.get("error") or {}).get("what")
                     or check["summary"], True)
                    for image in data["images"] for check in image["checks"]  # type: ignore[attr-defined]
                    if check["status"] == "fail"]
        for line in github.failure_annotations(failures):
            print(line, flush=True)
        github.write_outputs(ci.output_file, outputs)
        github.write_summary(ci.summary_file, evidence_text.markdown(data))
    dotenv = publishing.dotenv_path(ci.workspace) if ci.platform is Platform.GITLAB else None
    if dotenv is not None:
        from sc_ci import safefile

        safefile.write_text(dotenv, publishing.dotenv_text(outputs))
    sys.stdout.flush()
