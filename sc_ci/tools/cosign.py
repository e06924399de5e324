"""cosign: sign/verify/attest argv per major version (key or keyless), secrets never in argv."""

from __future__ import annotations

import contextlib
import functools
import json
import os
import shlex
import shutil
import tempfile
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

from sc_ci import retry, runner
from sc_ci.errors import ConfigError, ScError, VerificationFailed
from sc_ci.runner import Completed
from sc_ci.secrets import Secret
from sc_ci.signing.signers import KMS_ENV_PREFIXES, CertificateIdentity, Key, Keyless, Signer, Verifier
from sc_ci.tools.cosign_failures import TROUBLESHOOTING, classify
from sc_ci.tools.cosign_output import decode_statements, parse_payloads, payload_digest, payload_type
from sc_ci.tools.cosign_statement import Route, load_predicate, route, statement_v1, write_statement
from sc_ci.tools.sigstore_files import LegacyTrust, legacy_trust

# Sigstore trust settings cosign reads from the environment (paths and URLs, never credentials): passed
# through from the caller; the config's tufMirror / tufRoot override the TUF ones.
SIGSTORE_ENV = ("TUF_ROOT", "TUF_MIRROR", "TUF_ROOT_JSON", "SIGSTORE_ROOT_FILE", "SIGSTORE_CT_LOG_PUBLIC_KEY_FILE",
                "SIGSTORE_REKOR_PUBLIC_KEY", "SIGSTORE_TSA_CERTIFICATE_FILE")
TOKEN_PLACEHOLDER = "<0600 token file>"  # noqa: S105 (dry runs show this instead of the file path)
EMPTY_ROOT_PLACEHOLDER = "<empty trusted root>"

#: Where signatures and attestations go (signing.storage): Sigstore bundles as OCI 1.1 referrers
#: (cosign v3's default; a `sha256-<hex>` index tag where the registry has no referrers API), the
#: `sha256-<hex>.sig` / `.att` tags every cosign release reads, or both.
Storage = Literal["referrers", "legacy", "both"]
#: What one cosign run writes: a Sigstore bundle (referrer) or the legacy tag format.
Format = Literal["bundle", "legacy"]
FORMATS: dict[Storage, tuple[Format, ...]] = {"referrers": ("bundle",), "legacy": ("legacy",),
                                              "both": ("legacy", "bundle")}
# The `critical.type` of a verified image-signature payload, per format. cosign verify also accepts any
# attestation bundle as "a signature" (its payload type is then the predicate type): those are not counted.
BUNDLE_SIGNATURE_TYPE = "https://sigstore.dev/cosign/sign/v1"
LEGACY_SIGNATURE_TYPES = frozenset({"cosign container image signature", "atomic container signature"})




@dataclass(frozen=True)
class SignOptions:
    """Sigstore settings that change cosign's argv or environment (public-good Sigstore when all unset)."""

    tlog: bool = True  # upload to / require the transparency log (Rekor)
    ct_log: bool = True  # require an SCT: Fulcio certificates logged in certificate transparency
    fulcio_url: str | None = None
    rekor_url: str | None = None
    trusted_root: str | None = None  # trusted_root.json (file)
    signing_config: str | None = None  # signing_config.json (file): cosign v3 reads it as is
    tuf_mirror: str | None = None  # TUF repository serving trusted_root.json (and the v3 signing config)
    tuf_root: str | None = None  # that mirror's root.json (file)
    # The services named in signing_config, for cosign v2 (which takes URLs, not the file, here).
    config_fulcio_url: str | None = None
    config_rekor_url: str | None = None
    # signing.storage; None: whatever this cosign writes by default (v3: bundles, v2: legacy tags), no flag
    storage: Storage | None = None
    recursive: bool = True  # signing an index signs each platform manifest too (cosign --recursive)

    @property
    def v2_fulcio_url(self) -> str | None:
        return self.fulcio_url or self.config_fulcio_url

    @property
    def v2_rekor_url(self) -> str | None:
        return self.rekor_url or self.config_rekor_url

    def env(self) -> dict[str, str]:
        """TUF settings both majors read from the environment (TUF_MIRROR, TUF_ROOT_JSON)."""
        out = {}
        if self.tuf_mirror:
            out["TUF_MIRROR"] = self.tuf_mirror
        if self.tuf_root:
            out["TUF_ROOT_JSON"] = self.tuf_root
        return out


@contextlib.contextmanager
def token_file(token: Secret) -> Iterator[Path]:
    """The token in a fresh 0600 file inside a private 0700 directory; both removed on every exit path."""
    directory = Path(tempfile.mkdtemp(prefix="sc-ci-oidc-"))
    try:
        path = directory / "token"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(token.reveal())
        yield path
    finally:
        shutil.rmtree(directory, ignore_errors=True)


@contextlib.contextmanager
def empty_trusted_root() -> Iterator[Path]:
    """A trusted root with no authority and no log in it, removed afterwards. cosign v2.6 refuses to read a
    Sigstore bundle without a trusted root ("trusted root is required when using new bundle format") even
    when a public key and --insecure-ignore-tlog leave nothing for it to check; this one trusts nothing."""
    with tempfile.TemporaryDirectory(prefix="sc-ci-trust-") as tmp:
        path = Path(tmp) / "trusted_root.json"
        path.write_text(json.dumps({"mediaType": "application/vnd.dev.sigstore.trustedroot+json;version=0.1"}))
        yield path


@dataclass(frozen=True)
class Verified:
    """What a successful verification established: how many image signatures, in which formats."""

    image: str
    signatures: int
    payloads: tuple[Mapping[str, object], ...]
    formats: frozenset[Format] = frozenset()


class Cosign:
    """One cosign binary of a known major version."""

    def __init__(self, path: Path, version: str, env: Mapping[str, str] | None = None) -> None:
        self.path = path
        self.version = version.lstrip("v")
        self.major = int(self.version.split(".")[0] or 0)
        self._env = dict(runner.base_env(env))
        self._password: Secret | None = None
        if env is not None and "COSIGN_PASSWORD" in env:
            self._password = Secret(env["COSIGN_PASSWORD"], "COSIGN_PASSWORD")
        self._caller_env = dict(env or {})

    # ---- argv builders (pure) -------------------------------------------------
    def formats(self, opts: SignOptions) -> tuple[Format, ...]:
        """What signing writes, in order: one cosign run per format (storage `both`: legacy, then bundle)."""
        if opts.storage is None:
            return ("bundle",) if self.major >= 3 else ("legacy",)
        return FORMATS[opts.storage]

    def sign_argv(self, image: str, key: Signer, opts: SignOptions, token_path: str = TOKEN_PLACEHOLDER,
                  fmt: Format | None = None, *, recursive: bool = False) -> list[str]:
        argv = [str(self.path), "sign", "--yes", *_signer_flags(key, token_path)]
        argv += self._sign_flags(key, opts, fmt or self.formats(opts)[0])
        if recursive:
            argv.append("--recursive")  # an index: sign each platform manifest too
        return [*argv, image]

    def sign_argvs(self, image: str, key: Signer, opts: SignOptions, *, recursive: bool = False,
                   formats: Sequence[Format] | None = None) -> list[list[str]]:
        """Every signing command for `image` (one per format), as a dry run shows them."""
        return [self.sign_argv(image, key, opts, fmt=f, recursive=recursive) for f in formats or self.formats(opts)]

    def verify_argv(self, image: str, key: Verifier, opts: SignOptions, *, legacy_only: bool = False,
                    empty_root: str = EMPTY_ROOT_PLACEHOLDER) -> list[str]:
        """`legacy_only` (v3): read the `.sig` tag even where bundles exist (--new-bundle-format=false)."""
        argv = [str(self.path), "verify", *_verifier_flags(key), "--output", "json"]
        flags = self._verify_flags(key, opts, empty_root)
        if legacy_only and self.major >= 3:
            flags.append("--new-bundle-format=false")
        return [*argv, *flags, image]

    def attest_argv(self, image: str, key: Signer, predicate: Path, predicate_type: str, opts: SignOptions,
                    token_path: str = TOKEN_PLACEHOLDER, fmt: Format | None = None) -> list[str]:
        """`cosign attest --predicate`: a Statement v0.1 (what `attest` falls back to where no v1 route is)."""
        argv = [str(self.path), "attest", "--yes", *_signer_flags(key, token_path), "--predicate", str(predicate),
                "--type", predicate_type]
        return [*argv, *self._sign_flags(key, opts, fmt or self.formats(opts)[0]), image]

    def statement_route(self, key: Signer, opts: SignOptions, fmt: Format) -> Route | None:
        """How this cosign signs a Statement v1 in format `fmt` (see sc_ci.tools.cosign_statement); None: it
        cannot, and `cosign attest` signs a v0.1 one."""
        return route(self.major, fmt, keyless=isinstance(key, Keyless), tlog=opts.tlog)

    def attest_blob_argv(self, statement: Path, key: Signer, opts: SignOptions, fmt: Format, out: Path | str,
                         token_path: str = TOKEN_PLACEHOLDER) -> list[str]:
        """`cosign attest-blob --statement`: sign the statement as is (DSSE, payloadType
        application/vnd.in-toto+json) into a Sigstore bundle (`bundle`) or a bare DSSE envelope (`legacy`)."""
        argv = [str(self.path), "attest-blob", "--yes", *_signer_flags(key, token_path), "--statement",
                str(statement), *self._sign_flags(key, opts, fmt)]
        if fmt == "bundle":
            return [*argv, "--bundle", str(out)]
        return [*argv, "--output-signature", str(out)]

    def attach_attestation_argv(self, image: str, signed: Path | str) -> list[str]:
        """`cosign attach attestation`: a bundle becomes a referrer (v3), a DSSE envelope an `.att` layer."""
        return [str(self.path), "attach", "attestation", "--attestation", str(signed), image]

    def attest_argvs(self, image: str, key: Signer, predicate: Path, predicate_type: str,
                     opts: SignOptions) -> list[list[str]]:
        """Every command `attest` runs, in order, as a dry run shows them (placeholders for the temporary
        statement and signed files; whether the predicate is a JSON object is not checked here)."""
        commands: list[list[str]] = []
        for fmt in self.formats(opts):
            kind = self.statement_route(key, opts, fmt)
            if kind is None:
                commands.append(self.attest_argv(image, key, predicate, predicate_type, opts, fmt=fmt))
                continue
            signed = f"<{'bundle' if kind == 'bundle' else 'DSSE envelope'} of {predicate.name}>"
            commands += [self.attest_blob_argv(Path(f"<in-toto Statement v1 of {predicate.name}>"), key, opts, fmt,
                                               signed),
                         self.attach_attestation_argv(image, signed)]
        return commands

    def verify_attestation_argv(self, image: str, key: Verifier, predicate_type: str, opts: SignOptions,
                                legacy: LegacyTrust | None = None,
                                empty_root: str = EMPTY_ROOT_PLACEHOLDER) -> list[str]:
        argv = [str(self.path), "verify-attestation", *_verifier_flags(key), "--type", predicate_type]
        flags = self._verify_flags(key, opts, empty_root)
        if self._needs_legacy_trust(key, opts):
            # v2 checks old-format attestations against --ca-roots only ("trusted root path currently only
            # supported with --new-bundle-format"): the trusted root's CAs go there, its log keys in env
            at = flags.index("--trusted-root")
            roots = ["--ca-roots", legacy.ca_roots if legacy else "<Fulcio roots of the trusted root>"]
            if legacy and legacy.ca_intermediates:
                roots += ["--ca-intermediates", legacy.ca_intermediates]
            flags[at:at + 2] = roots
        return [*argv, *flags, image]

    def _needs_legacy_trust(self, key: Verifier, opts: SignOptions) -> bool:
        """v2, keyless, a trusted root, and attestations in the legacy format (where bundles are expected,
        v2 reads them with --trusted-root and refuses --ca-roots)."""
        return (self.major < 3 and opts.trusted_root is not None and isinstance(key, CertificateIdentity)
                and self.formats(opts) == ("legacy",))

    def _needs_empty_root(self, key: Verifier, opts: SignOptions) -> bool:
        """v2 with a public key, no trusted root and no transparency log: an empty trusted root lets it read
        Sigstore bundles (it auto-detects them) without the network; the key is all it checks."""
        return self.major < 3 and isinstance(key, Key) and opts.trusted_root is None and not opts.tlog

    def public_key_argv(self, key: Key) -> list[str]:
        return [str(self.path), "public-key", "--key", key.ref]

    def _sign_flags(self, key: Signer, opts: SignOptions, fmt: Format) -> list[str]:
        """Where signing goes and in which format.

        Bundles: v3 prefers a signing config (else the deprecated URL flags with --use-signing-config=false);
        v2 needs --new-bundle-format=true and takes URLs (read from a signing config when that is what was
        given). Legacy tags: v2's default; v3 needs --new-bundle-format=false, which it accepts only with
        --use-signing-config=false (no signing config file either), so it takes URLs like v2."""
        keyless = isinstance(key, Keyless)
        flags: list[str] = []
        if self.major >= 3 and fmt == "bundle":
            if opts.signing_config:
                flags += ["--signing-config", opts.signing_config]
            elif (keyless and opts.fulcio_url) or opts.rekor_url or not opts.tlog:
                flags.append("--use-signing-config=false")
                if keyless and opts.fulcio_url:
                    flags.append(f"--fulcio-url={opts.fulcio_url}")
                if opts.rekor_url:
                    flags.append(f"--rekor-url={opts.rekor_url}")
                if not opts.tlog:
                    flags.append("--tlog-upload=false")
        elif self.major >= 3:
            flags += ["--new-bundle-format=false", "--use-signing-config=false"]
            flags += self._url_flags(keyless, opts)
        else:
            if fmt == "bundle":
                flags.append("--new-bundle-format=true")
            flags += self._url_flags(keyless, opts)
            if keyless and not opts.ct_log:
                flags.append("--insecure-skip-verify=true")  # v2 checks the SCT while signing; v3 does not
        if opts.trusted_root and (keyless or opts.signing_config):
            flags += ["--trusted-root", opts.trusted_root]
        return flags

    @staticmethod
    def _url_flags(keyless: bool, opts: SignOptions) -> list[str]:
        flags = []
        if keyless and opts.v2_fulcio_url:
            flags.append(f"--fulcio-url={opts.v2_fulcio_url}")
        if opts.tlog and opts.v2_rekor_url:
            flags.append(f"--rekor-url={opts.v2_rekor_url}")
        if not opts.tlog:
            flags.append("--tlog-upload=false")
        return flags

    def _verify_flags(self, key: Verifier, opts: SignOptions, empty_root: str = EMPTY_ROOT_PLACEHOLDER) -> list[str]:
        flags: list[str] = []
        if opts.trusted_root:
            flags += ["--trusted-root", opts.trusted_root]
        elif self._needs_empty_root(key, opts):
            flags += ["--trusted-root", empty_root]
        if not opts.tlog:
            flags.append("--insecure-ignore-tlog=true")
        elif self.major < 3 and opts.v2_rekor_url:
            flags.append(f"--rekor-url={opts.v2_rekor_url}")  # v3 verifies log entries from the bundle
        if isinstance(key, CertificateIdentity) and not opts.ct_log:
            flags.append("--insecure-ignore-sct=true")
        return flags

    # ---- execution --------------------------------------------------------------
    def env_for(self, key: Signer | Verifier | None, docker_config: str | None = None,
                opts: SignOptions | None = None) -> dict[str, str]:
        env = dict(self._env)
        env["COSIGN_PASSWORD"] = self._password.reveal() if self._password else ""
        if isinstance(key, Key):
            for name, secret in key.env.items():
                env[name] = secret.reveal()
            if key.is_kms:
                env.update({k: v for k, v in self._caller_env.items() if k.startswith(KMS_ENV_PREFIXES)})
        env.update({k: v for k, v in self._caller_env.items() if k in SIGSTORE_ENV and v})
        if opts is not None:
            env.update(opts.env())
        if docker_config:
            env["DOCKER_CONFIG"] = docker_config
        elif "DOCKER_CONFIG" in self._caller_env:
            env["DOCKER_CONFIG"] = self._caller_env["DOCKER_CONFIG"]
        return env

    def _signing(self, key: Signer, argv_for: Callable[[str], list[str]], env: Mapping[str, str]) -> Completed:
        """Run a signing command; a keyless one gets its token file for exactly as long as cosign runs."""
        if not isinstance(key, Keyless):
            argv = argv_for(TOKEN_PLACEHOLDER)
            return _run(argv, env)
        if key.token is None:
            raise ScError("keyless signing without an identity token", why="the plan was made for a dry run",
                          fix="Run without --dry-run.")
        with token_file(key.token) as path:
            argv = argv_for(str(path))
            return _run(argv, env)

    def sign(self, image: str, key: Signer, opts: SignOptions, docker_config: str | None = None, *,
             recursive: bool = False, formats: Sequence[Format] | None = None) -> Completed:
        """Sign `image` once per storage format (`formats`: only these, e.g. the ones still missing);
        `recursive`: an index, whose platform manifests get signed too."""
        with _writer(image):
            return self._sign(image, key, opts, docker_config, recursive=recursive, formats=formats)

    def _sign(self, image: str, key: Signer, opts: SignOptions, docker_config: str | None, *,
              recursive: bool, formats: Sequence[Format] | None) -> Completed:
        env = self.env_for(key, docker_config, opts)
        done: list[Completed] = []
        for fmt in formats or self.formats(opts):
            result = self._signing(key, functools.partial(self._sign_argv_for, image, key, opts, fmt, recursive),
                                   env)
            if not result.ok:
                raise _failure(result, image, "signing", key, opts)
            done.append(result)
        return _combined(done)

    def _sign_argv_for(self, image: str, key: Signer, opts: SignOptions, fmt: Format, recursive: bool,
                       token: str) -> list[str]:
        return self.sign_argv(image, key, opts, token, fmt, recursive=recursive)

    def _attest_argv_for(self, image: str, key: Signer, predicate: Path, predicate_type: str, opts: SignOptions,
                         fmt: Format, token: str) -> list[str]:
        return self.attest_argv(image, key, predicate, predicate_type, opts, token, fmt)

    def _verify_run(self, image: str, key: Verifier, opts: SignOptions, docker_config: str | None,
                    legacy_only: bool = False) -> Completed:
        env = self.env_for(key, docker_config, opts)
        if not self._needs_empty_root(key, opts):
            return _run(self.verify_argv(image, key, opts, legacy_only=legacy_only), env)
        with empty_trusted_root() as root:
            return _run(self.verify_argv(image, key, opts, legacy_only=legacy_only, empty_root=str(root)), env)

    def verify(self, image: str, key: Verifier, opts: SignOptions, docker_config: str | None = None) -> Verified:
        """Verify the image signature of `image` (either format: both majors read bundles first, then the
        `.sig` tag). Attestation bundles, which cosign also accepts as signatures, do not count."""
        result = self._verify_run(image, key, opts, docker_config)
        if not result.ok:
            raise _failure(result, image, "verification", key, opts)
        digest = image.rpartition("@")[2]
        matching = [p for p in parse_payloads(result.stdout) if payload_digest(p) == digest]
        if not matching:
            raise VerificationFailed(f"{image}: cosign verified signatures, but none covers this digest",
                                     why="the signed payloads name other digests",
                                     fix="Sign the image by digest with `sc-ci image sign`.")
        signatures = [p for p in matching if payload_format(p) is not None]
        if not signatures and self.major >= 3:  # bundles hold only attestations: is there a .sig behind them?
            legacy = self._verify_run(image, key, opts, docker_config, legacy_only=True)
            if legacy.ok:
                signatures = [p for p in parse_payloads(legacy.stdout)
                              if payload_digest(p) == digest and payload_format(p) is not None]
        if not signatures:
            kinds = ", ".join(sorted({str(payload_type(p)) for p in matching}))
            raise VerificationFailed(
                f"{image}: cosign found attestations ({kinds}) but no image signature",
                why=f"cosign {self.version} reads Sigstore bundles in preference to the .sig tag, and the bundles "
                    "here are attestations (SBOM, provenance), not a signature of the image",
                fix="Sign the image (sc-ci image sign). A .sig signature hidden behind attestation bundles is "
                    "read by cosign v3 (sc-ci retries it with --new-bundle-format=false) but not by v2.6; sign "
                    f"with signing.storage: both so every verifier finds one. See {TROUBLESHOOTING}#attestations-"
                    "but-no-image-signature")
        return Verified(image, len(signatures), tuple(signatures),
                        frozenset(f for p in signatures if (f := payload_format(p)) is not None))

    def signed_formats(self, image: str, key: Verifier, opts: SignOptions,
                       docker_config: str | None = None) -> Verified:
        """The formats (of those `opts` asks for) in which `image` already carries a valid image signature by
        `key`: one cosign verify, two for v3 and storage `both`. Any failure counts as "not signed".

        Both majors read bundles when there are any, so one verify finds the bundle (or, with no bundles,
        the legacy tag); v3 reads the legacy tag alone with --new-bundle-format=false. v2 cannot look behind
        bundles: with `both`, a v2 run re-signs the legacy format (cosign skips duplicate key signatures)."""
        wanted = self.formats(opts)
        digest = image.rpartition("@")[2]
        found: list[Mapping[str, object]] = []

        def attempt(legacy_only: bool) -> None:
            try:
                result = self._verify_run(image, key, opts, docker_config, legacy_only)
            except ScError:
                return
            if result.ok:
                found.extend(p for p in parse_payloads(result.stdout)
                             if payload_digest(p) == digest and payload_format(p) is not None)

        if self.major < 3 or "bundle" in wanted:
            attempt(False)
        if self.major >= 3 and "legacy" in wanted and "legacy" not in {payload_format(p) for p in found}:
            attempt(True)
        formats = frozenset(f for p in found if (f := payload_format(p)) is not None and f in wanted)
        return Verified(image, len(found), tuple(found), formats)

    def attest(self, image: str, key: Signer, predicate: Path, predicate_type: str, opts: SignOptions,
               docker_config: str | None = None) -> Completed:
        """Attach `predicate` as a signed in-toto attestation of `predicate_type` (cosign --type value),
        once per storage format, exactly where image signatures go.

        The statement is an in-toto Statement v1 about `image`'s digest wherever this cosign can sign and attach
        one (`statement_route`: v3 bundles, key-based `.att` without a log); elsewhere, for predicates that are
        not a JSON object and for an image not given by digest, `cosign attest` makes its Statement v0.1."""
        with _writer(image):
            return self._attest(image, key, predicate, predicate_type, opts, docker_config)

    def _attest(self, image: str, key: Signer, predicate: Path, predicate_type: str, opts: SignOptions,
                docker_config: str | None) -> Completed:
        env = self.env_for(key, docker_config, opts)
        done: list[Completed] = []
        statement = functools.cache(lambda: _statement_or_none(image, predicate, predicate_type))
        for fmt in self.formats(opts):
            kind = self.statement_route(key, opts, fmt)
            if kind is not None and (v1 := statement()) is not None:
                done += self._attest_v1(image, key, v1, opts, fmt, env)
                continue
            result = self._signing(key, functools.partial(self._attest_argv_for, image, key, predicate,
                                                          predicate_type, opts, fmt), env)
            if not result.ok:
                raise _failure(result, image, "attesting", key, opts)
            done.append(result)
        return _combined(done)

    def _attest_v1(self, image: str, key: Signer, statement: Mapping[str, object], opts: SignOptions, fmt: Format,
                   env: Mapping[str, str]) -> list[Completed]:
        """Sign `statement` with `cosign attest-blob` (cosign signs: key, KMS or keyless) and attach the result
        with `cosign attach attestation`; both files live in a private directory removed afterwards."""
        with tempfile.TemporaryDirectory(prefix="sc-ci-attest-") as tmp:
            statement_path = write_statement(Path(tmp) / "statement.json", statement)
            signed = Path(tmp) / ("bundle.json" if fmt == "bundle" else "envelope.json")
            signing = self._signing(key, functools.partial(self.attest_blob_argv, statement_path, key, opts, fmt,
                                                           signed), env)
            if not signing.ok:
                raise _failure(signing, image, "attesting", key, opts)
            attaching = self._attach_once(image, signed, fmt, env)
            if not attaching.ok:
                raise _failure(attaching, image, "attaching the attestation to", key, opts)
        return [signing, attaching]

    def _attach_once(self, image: str, signed: Path, fmt: Format, env: Mapping[str, str]) -> Completed:
        """`cosign attach attestation`, retried like every cosign run; but a legacy `.att` write whose response
        was lost may have landed, and cosign appends without looking: before a retry, an envelope already
        attached (its signatures are unique to this signing) counts as done."""
        argv = self.attach_attestation_argv(image, signed)
        if fmt != "legacy":
            return _run(argv, env)
        mine = _envelope_signatures(signed.read_text(encoding="utf-8")) if signed.is_file() else frozenset()
        tries = 0

        def attached() -> bool:
            found = runner.run([str(self.path), "download", "attestation", image], env=env)
            return found.ok and any(_envelope_signatures(line) & mine for line in found.stdout.splitlines())

        def attempt() -> Completed:
            nonlocal tries
            tries += 1
            if tries > 1 and mine and attached():
                return Completed(tuple(argv), 0, "", "", 0.0)
            return _transient_or(runner.run(argv, env=env))

        try:
            return retry.call(attempt)
        except retry.TransientError as exc:
            return Completed(tuple(argv), 1, "", str(exc), 0.0)

    def verify_attestation(self, image: str, key: Verifier, predicate_type: str, opts: SignOptions,
                           docker_config: str | None = None) -> list[dict[str, object]]:
        """Verify attestations of `predicate_type`; return the decoded in-toto statements."""
        result = self.verify_attestation_run([image], key, predicate_type, opts, docker_config)
        if not result.ok:
            raise _failure(result, image, "attestation verification", key, opts)
        return decode_statements(result.stdout)

    def verify_attestation_run(self, images: Sequence[str], key: Verifier, predicate_type: str, opts: SignOptions,
                               docker_config: str | None = None) -> Completed:
        """One `cosign verify-attestation --type T` over `images` (cosign verifies them in order and stops at
        the first that fails; each verified image gets a `Verification for REF --` line on stderr and its
        envelopes, one per line, on stdout)."""
        env = self.env_for(key, docker_config, opts)
        first, rest = images[0], list(images[1:])
        if self._needs_legacy_trust(key, opts) and opts.trusted_root:
            try:
                with legacy_trust(Path(opts.trusted_root), tlog=opts.tlog, ct_log=opts.ct_log) as legacy:
                    argv = self.verify_attestation_argv(first, key, predicate_type, opts, legacy)
                    env.update(legacy.env)
                    return _run([*argv, *rest], env)
            except (OSError, ValueError, KeyError) as exc:
                raise ConfigError(f"cannot read the trusted root {opts.trusted_root}", why=str(exc),
                                  path="security.signing.sigstore.trustedRoot",
                                  fix="Give a trusted_root.json made with `cosign trusted-root create`.") from exc
        if self._needs_empty_root(key, opts):
            with empty_trusted_root() as root:
                argv = self.verify_attestation_argv(first, key, predicate_type, opts, empty_root=str(root))
                return _run([*argv, *rest], env)
        return _run([*self.verify_attestation_argv(first, key, predicate_type, opts), *rest], env)

    def verify_run(self, images: Sequence[str], key: Verifier, opts: SignOptions,
                   docker_config: str | None = None) -> Completed:
        """One `cosign verify` over `images` (in order, stopping at the first that fails; a
        `Verification for REF --` line on stderr and a JSON array of payloads on stdout per verified image)."""
        env = self.env_for(key, docker_config, opts)
        if not self._needs_empty_root(key, opts):
            return _run([*self.verify_argv(images[0], key, opts), *images[1:]], env)
        with empty_trusted_root() as root:
            return _run([*self.verify_argv(images[0], key, opts, empty_root=str(root)), *images[1:]], env)

    def public_key(self, key: Key) -> Secret:
        """Derive the public key of a private key (for verify-after-sign when no publicKey is given)."""
        result = runner.run(self.public_key_argv(key), env=self.env_for(key), timeout=60)
        if not result.ok:
            raise classify(result, key.label, "reading the public key of")
        return Secret(result.stdout, "public key")


def _statement_or_none(image: str, predicate: Path, predicate_type: str) -> dict[str, object] | None:
    """The Statement v1 of `predicate` about `image`; None when there can be none (see `Cosign.attest`)."""
    loaded = load_predicate(predicate, predicate_type)
    if loaded is None:
        return None
    try:
        return statement_v1(image, loaded, predicate_type)
    except ValueError:  # not REPO@sha256:…: cosign attest resolves the tag itself
        return None


def _signer_flags(key: Signer, token_path: str) -> list[str]:
    if isinstance(key, Keyless):
        return ["--identity-token", token_path]
    return ["--key", key.ref]


def _verifier_flags(key: Verifier) -> list[str]:
    if isinstance(key, CertificateIdentity):
        return key.flags()
    return ["--key", key.ref]


def consumer_command(image: str, key: Verifier, opts: SignOptions, predicate_type: str | None = None) -> str:
    """The `cosign verify …` line a consumer runs (a key: with the public key file they hold); with
    `predicate_type`, the `cosign verify-attestation --type …` line instead."""
    argv = ["cosign", "verify"] if predicate_type is None else ["cosign", "verify-attestation", "--type",
                                                                 predicate_type]
    if isinstance(key, CertificateIdentity):
        argv += key.flags()
        if opts.trusted_root:
            argv += ["--trusted-root", opts.trusted_root]
    else:
        argv += ["--key", key.label if not key.ref.startswith("env://") else "cosign.pub"]
    if not opts.tlog:
        argv.append("--insecure-ignore-tlog=true")
    if isinstance(key, CertificateIdentity) and not opts.ct_log:
        argv.append("--insecure-ignore-sct=true")
    return shlex.join([*argv, image])


def _run(argv: list[str], env: Mapping[str, str]) -> Completed:
    """Run cosign, retrying transient failures (network, 5xx) with backoff; when every attempt failed,
    the last failed result is returned for classification (never the retry's own exception)."""
    attempts: list[Completed] = []

    def attempt() -> Completed:
        attempts.append(runner.run(argv, env=env))
        return _transient_or(attempts[-1])

    try:
        return retry.call(attempt)
    except retry.TransientError:
        last = attempts[-1]
        note = (f"sc-ci: cosign failed {len(attempts)} times in a row with a transient error (network, registry, "
                "Fulcio or Rekor); it was retried with backoff")
        return replace(last, stderr=f"{last.stderr.rstrip()}\n{note}\n")


def _transient_or(result: Completed) -> Completed:
    if not result.ok and retry.is_transient_text(result.stderr) and not _is_verification(result):
        raise retry.TransientError(result.tail(3))
    return result


def _failure(result: Completed, image: str, action: str, key: Signer | Verifier | None,
             opts: SignOptions) -> ScError:
    identity = key.label if isinstance(key, CertificateIdentity) else None
    kms = key.label if isinstance(key, Key) and key.is_kms else None
    return classify(result, image, action, identity=identity, fulcio_url=opts.fulcio_url or opts.config_fulcio_url,
                    kms=kms)


def _combined(results: Sequence[Completed]) -> Completed:
    """Several cosign runs (one per storage format) as one result: the last command, the total time."""
    last = results[-1]
    return replace(last, stdout="".join(r.stdout for r in results), stderr="".join(r.stderr for r in results),
                   seconds=sum(r.seconds for r in results))


def _is_verification(result: Completed) -> bool:
    """A verdict about signatures, not a failure to fetch them: cosign reports "no matching signatures: Get
    …/blobs/…: connection refused" (exit 12) when the network failed mid-verification; that one is retried."""
    verdict = result.returncode in (10, 11, 12) or "no matching" in result.stderr or "threshold" in result.stderr
    return verdict and not retry.is_transient_text(result.stderr)


_WRITERS: dict[str, threading.Lock] = {}
_WRITERS_GUARD = threading.Lock()


@contextlib.contextmanager
def _writer(image: str) -> Iterator[None]:
    """One cosign write at a time per digest: signatures and attestations of a digest live in shared tags
    (`sha256-<hex>.sig` / `.att`, or the `sha256-<hex>` index of bundles) that cosign reads, extends and
    writes back, so two concurrent writers (sbom-attach and provenance) lose one of the two layers."""
    with _WRITERS_GUARD:
        lock = _WRITERS.setdefault(image.rpartition("@")[2] or image, threading.Lock())
    with lock:
        yield


def _envelope_signatures(text: str) -> frozenset[str]:
    """The `sig` values of a DSSE envelope (JSON text); empty when it is not one."""
    try:
        envelope = json.loads(text)
    except ValueError:
        return frozenset()
    sigs = envelope.get("signatures") if isinstance(envelope, dict) else None
    return frozenset(s["sig"] for s in sigs or () if isinstance(s, dict) and isinstance(s.get("sig"), str))


def payload_format(payload: Mapping[str, object]) -> Format | None:
    """Which format a verified image-signature payload came from; None: not an image signature (an
    attestation bundle, which cosign verify counts as a signature)."""
    kind = payload_type(payload)
    if kind == BUNDLE_SIGNATURE_TYPE:
        return "bundle"
    if kind is None or kind in LEGACY_SIGNATURE_TYPES:
        return "legacy"
    return None
