"""`sc-ci release create|merge`: the whole release (everything the config enables, AC-5.1) with its summary,
`release.json` and git tag; and one summary and verdict from the manifests of CI shards."""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from pathlib import Path

from sc_ci.commands import common, output, release_policy, release_verify, router
from sc_ci.engine import gittag
from sc_ci.engine import run as engine_run
from sc_ci.engine.context import RunOptions
from sc_ci.engine.plan import Request
from sc_ci.errors import EXIT_FAILED, ScError
from sc_ci.provenance.interface import Explicit
from sc_ci.report import manifest as manifest_io
from sc_ci.report import publish
from sc_ci.results.run import Release, Shard
from sc_ci.session import Session, open_session

EPILOG_CREATE = """examples:
  sc-ci release create -s shop -e production --version 2026.1.7 --registry registry.example.com/shop
  sc-ci release create --config security.yaml --image reg/api:1.4.0 --image reg/web:1.4.0 --version 1.4.0
  sc-ci release create -s shop -e production --version 2026.1.7 --shard 2/4 --output out/   (CI matrix job 2)
  sc-ci release create -s shop -e production --version 2026.1.7 --push-tag
  sc-ci release create -s shop -e production --version 2026.1.7 --dry-run
everything security: enables runs on every image by digest: scan → sign → SBOM → provenance → verify, images
in parallel. The summary (console, job summary, release.json) lists every artifact and the verify commands.
After a successful release the annotated git tag v{version} (--tag-pattern) is created on the commit the
provenance names; --push-tag pushes it; no tag on failure or in a dry run. exit 1 when a step failed under a
fail-closed policy or a scan gate tripped; 2 for usage or configuration errors."""

EPILOG_MERGE = """examples:
  sc-ci release merge shard-1/release.json shard-2/release.json --output out/
one summary, one set of outputs and one verdict (exit 1 if any shard failed the release)."""


def register(sub: argparse._SubParsersAction[common.Parser]) -> None:
    rel = common.add_subparser(sub, "release", router.summary("release"))
    rel_sub = rel.add_subparsers(dest="action", required=True, parser_class=common.Parser)
    p = common.add_subparser(rel_sub, "create", "scan, sign, SBOM, provenance and verify every image; tag",
                             EPILOG_CREATE)
    common.images(p)
    p.add_argument("--version", dest="image_version", help="the release version (image tag; names the git tag)")
    p.add_argument("--registry", help="registry/prefix of the images the stack builds")
    p.add_argument("--shard", help="K/N: only this CI job's share of the images (deterministic)")
    p.add_argument("-o", "--output", help="directory for release.json and reports (default: SC_CI_OUTPUT_DIR)")
    p.add_argument("--cache-dir", help="digest-keyed cache (SBOMs, scan results); SC_CI_CACHE_DIR")
    p.add_argument("--force", action="store_true", default=None,
                   help="sign and attest even what already carries the same signature or attestation")
    p.add_argument("--tag-pattern", help="git tag name (default v{version}; also {stack}, {environment})")
    p.add_argument("--no-tag", dest="tag", action="store_false", default=True, help="create no git tag")
    p.add_argument("--push-tag", action="store_true", help="push the tag to origin after creating it")
    p.add_argument("--source-repo", metavar="URL", help="provenance outside CI: the source repository")
    p.add_argument("--git-sha", metavar="SHA", help="provenance outside CI (and the tagged commit)")
    p.add_argument("--workflow-name", metavar="NAME", help="provenance outside CI: the workflow")
    common.tlog(p)
    common.common(p)
    p.set_defaults(run=create)
    release_verify.register(rel_sub)
    release_policy.register(rel_sub)
    p = common.add_subparser(rel_sub, "merge", "one summary and verdict from shards' release.json", EPILOG_MERGE)
    p.add_argument("manifests", nargs="+", metavar="RELEASE.json")
    p.add_argument("-o", "--output", help="directory for the merged release.json")
    common.verbosity(p)
    p.set_defaults(run=merge)


def _flags(args: argparse.Namespace) -> dict[str, object]:
    flags: dict[str, object] = {}
    for attr, key in (("registry", "registry"), ("image_version", "version"), ("cache_dir", "cacheDir"),
                      ("output", "outputDir"), ("shard", "shard"), ("tag_pattern", "tagPattern")):
        if getattr(args, attr, None):
            flags[key] = getattr(args, attr)
    if getattr(args, "force", None):
        flags["signing.force"] = True
    if getattr(args, "tlog", None) is not None:
        flags["signing.sigstore.transparencyLog"] = args.tlog
    return flags


def create(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    session = open_session(args, env, _flags(args))
    explicit = Explicit(args.source_repo, args.git_sha, args.workflow_name)
    tag = _tag_plan(session, explicit, push=args.push_tag) if args.tag else None
    if tag is not None:
        gittag.check(tag, env)  # an existing tag at another commit is refused before anything runs
    return release(session, RunOptions(explicit), title=_title(session), tag=tag)


def release(session: Session, options: RunOptions, *, title: str, tag: gittag.TagPlan | None = None) -> int:
    """The release command and the CI step (`action`) share this: run, tag on success, publish."""
    runtime = session.loaded.runtime
    shard = Shard.parse(runtime.shard) if runtime.shard else None
    meta: dict[str, object] = {"version": runtime.version, "stack": runtime.stack,
                               "environment": runtime.environment}
    result = engine_run.execute(session, Request(shard=shard, upstream=session.upstream), options,
                                runtime.cache_dir)
    data = manifest_io.build(result, meta)
    code = result.verdict.exit_code
    if tag is not None:
        data["tag"] = _tag(tag, result, session, title)
        if data["tag"].get("error"):
            code = EXIT_FAILED
    output.publish_release(session, result, data, title)
    return code


def _tag(tag: gittag.TagPlan, result: Release, session: Session, title: str) -> dict[str, object]:
    if result.dry_run:
        return {"name": tag.name, "summary": f"{tag.name} not created (dry run)"}
    if result.verdict.exit_code != 0:
        return {"name": tag.name, "summary": f"{tag.name} not created: the release failed"}
    try:
        done = gittag.create(tag, [i.name for i in result.images], session.env, title=title)
    except ScError as exc:
        return {"name": tag.name, "summary": f"{tag.name} not created: {exc.what}", "error": exc.diagnostics()}
    return {"name": done.name, "commit": done.commit, "created": done.created, "pushed": done.pushed,
            "summary": done.summary}


def _tag_plan(session: Session, explicit: Explicit, *, push: bool) -> gittag.TagPlan | None:
    runtime = session.loaded.runtime
    root = session.loaded.project_root
    head = gittag.head(root, session.env)
    if head is None:
        return None  # not a git repository: the summary of a tagless release says nothing is tagged
    name = gittag.tag_name(runtime.tag_pattern, runtime.version, stack=runtime.stack,
                           environment=runtime.environment)
    commit = explicit.git_sha or session.ci.commit or head
    return gittag.TagPlan(name, commit, root, push=push)


def _title(session: Session) -> str:
    runtime = session.loaded.runtime
    what = f"{runtime.stack}/{runtime.environment}" if runtime.stack else f"{len(session.images)} image(s)"
    return f"sc-ci release {what}" + (f" {runtime.version}" if runtime.version else "")


def merge(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    from sc_ci import ci

    data = manifest_io.merge([manifest_io.load(Path(p)) for p in args.manifests])
    title = "sc-ci release (merged " + f"{len(args.manifests)} shards)"
    publish.publish(data, title, ci.detect(env), output_dir=Path(args.output) if args.output else None)
    return int(data["verdict"]["exitCode"])
