"""`sc-ci release policy`: admission policies that enforce, at deploy time, what `release verify` checks — the
release's signer and its attestation types — as a Kyverno ClusterPolicy or a policy-controller
ClusterImagePolicy (YAML on stdout, or --output FILE)."""

from __future__ import annotations

import argparse
import stat
from collections.abc import Mapping
from pathlib import Path

import yaml

from sc_ci import safefile, sanitize
from sc_ci.commands import common, release_verify
from sc_ci.errors import UsageError
from sc_ci.verify import admission, setup

EPILOG = """examples:
  sc-ci release policy --format kyverno --manifest out/release.json --key cosign.pub > policy.yaml
  sc-ci release policy --format policy-controller --manifest release.json \\
      --certificate-identity https://github.com/acme/shop/.github/workflows/release.yml@refs/tags/v1.4.0 \\
      --certificate-oidc-issuer https://token.actions.githubusercontent.com --output cip.yaml
the same expectations as release verify (flags, then the config, then what release.json recorded): the
signer (a public key file or KMS URI, or a keyless identity and issuer) and the attestations the release made
— each SBOM format, SLSA provenance (builder id as a condition), the signed scan (its gate must not have
tripped) — required for every tag and digest of the released repositories. exit 2 for usage errors."""

MAX_PEM = 64 * 1024


class _Dumper(yaml.SafeDumper):
    """Multi-line strings (PEM keys, CUE policies) as literal blocks, as people write them."""


def _text(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|" if "\n" in value else None)


_Dumper.add_representer(str, _text)


def register(rel_sub: argparse._SubParsersAction[common.Parser]) -> None:
    p = common.add_subparser(rel_sub, "policy", "admission policy (Kyverno, policy-controller) from a release",
                             EPILOG)
    p.add_argument("--format", dest="policy_format", required=True, choices=admission.FORMATS,
                   help="kyverno (ClusterPolicy) or policy-controller (ClusterImagePolicy)")
    release_verify.expectation_flags(p)
    p.add_argument("--name", help="the policy's metadata.name (default from the release's stack, env, version)")
    p.add_argument("--fulcio-url", default=admission.PUBLIC_FULCIO, help="keyless: the Fulcio the cluster trusts")
    p.add_argument("--fulcio-roots", metavar="PEM", help="keyless: a private Fulcio's root certificate(s) (Kyverno)")
    p.add_argument("-o", "--output", metavar="FILE", help="write the YAML here (default: stdout)")
    common.tlog(p)
    common.common(p)
    p.set_defaults(run=run)


def _pem(path_text: str, what: str, marker: str) -> str:
    path = Path(path_text)
    try:
        info = path.lstat()
    except OSError as exc:
        raise UsageError(f"cannot read {what} {sanitize.one_line(path_text, 160)}", why=exc.strerror or str(exc),
                         fix=f"Pass the {what} as a PEM file.") from exc
    if not stat.S_ISREG(info.st_mode) or info.st_size > MAX_PEM:
        raise UsageError(f"{what} {sanitize.one_line(path_text, 160)} is not a PEM file (a regular file, "
                         f"at most {MAX_PEM // 1024} KiB; no symbolic link)", fix=f"Pass the {what} itself.")
    text = path.read_text(encoding="utf-8", errors="replace").strip()
    if marker not in text:
        raise UsageError(f"{what} {sanitize.one_line(path_text, 160)} holds no {marker}",
                         fix=f"Pass the {what} in PEM form (cosign.pub from cosign generate-key-pair).")
    return text + "\n"


def run(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    record = release_verify.record_of(args)
    session = release_verify.session_of(args, env, record)
    exp = setup.expectations(session, release_verify.given(args), record)
    trust = admission.Trust(
        tlog=args.tlog is not False and session.loaded.security.signing.sigstore.transparency_log,
        sct=session.loaded.security.signing.sigstore.certificate_transparency,
        fulcio_url=args.fulcio_url,
        fulcio_roots_pem=_pem(args.fulcio_roots, "Fulcio root", "BEGIN CERTIFICATE") if args.fulcio_roots else "")
    if exp.signer.kind == "key":
        assert exp.signer.key is not None
        ref = exp.signer.key.ref
        if exp.signer.key.is_kms:
            trust = admission.Trust(kms=ref, tlog=trust.tlog, sct=trust.sct)
        elif ref.startswith("env://"):
            raise UsageError("release policy needs the public key as a file or KMS URI, not env://",
                             fix="Write the public key to a file and pass --key cosign.pub.")
        else:
            trust = admission.Trust(public_key_pem=_pem(ref, "public key", "BEGIN PUBLIC KEY"), tlog=trust.tlog,
                                    sct=trust.sct)
    images = [i for i in (record.images if record else ()) if i.built] if record else None
    refs = [i.ref for i in images] if images is not None else list(session.images)
    if not refs:
        raise UsageError("the release has no image built by the project to write a policy for",
                         fix="Upstream images are not signed by the release: their admission is not its policy.")
    name = args.name or admission.name_for(dict(exp.release))
    document = admission.build(args.policy_format, refs, exp, trust, name)
    text = yaml.dump(document, Dumper=_Dumper, sort_keys=False, width=1000)
    if args.output:
        safefile.write_text(Path(args.output), text)
        print(f"wrote {sanitize.one_line(args.output, 200)} ({args.policy_format}, {len(refs)} image(s))")
    else:
        print(text, end="")
    return 0
