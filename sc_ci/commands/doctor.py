"""`sc-ci doctor`: which tools are ready, what the CI gives, whether keyless signing can work."""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from sc_ci import ci, config, sanitize
from sc_ci.ci.interface import CIContext
from sc_ci.commands import common, router
from sc_ci.config.model import SecurityConfig
from sc_ci.steps import registry
from sc_ci.tools import locate, pins, versions

EPILOG = """examples:
  sc-ci doctor                         # tools, CI platform, OIDC readiness
  sc-ci doctor --config security.yaml  # also: is everything the config needs ready? (exit 1 if not)"""


def register(sub: argparse._SubParsersAction[common.Parser]) -> None:
    p = common.add_subparser(sub, "doctor", router.summary("doctor"), EPILOG)
    p.add_argument("--tools-only", action="store_true", help="only check the pinned tools")
    common.common(p)
    p.set_defaults(run=run)


@dataclass(frozen=True)
class Check:
    """One line of the report: ok or not, whether the config needs it, and the fix."""

    name: str
    ok: bool
    required: bool
    detail: str
    fix: str = ""


def required_tools(security: SecurityConfig | None) -> set[str]:
    """Tools the config needs (the engine's own step registry says which); with no config, every required
    pinned tool."""
    if security is None:
        return {p.name for p in pins.load().required()}
    return registry.tools_for(security)


def tool_checks(env: Mapping[str, str], need: set[str]) -> list[Check]:
    checks = []
    for pin in pins.load():
        if not pin.required and pin.name not in need:
            continue
        found = locate.locate(pin.name, env=env)
        if found is None:
            checks.append(Check(pin.name, False, pin.name in need, f"not found (pinned {pin.version})",
                                f"make tools  (or: sc-ci tools install --tool {pin.name})"))
            continue
        v = versions.detect(pin.name, found.path, env=env)
        note = f"{v.version or '?'} at {found.path} ({found.source}); minimum {pin.minimum}"
        if v.warning:
            note += f"; warning: {v.warning}"
        checks.append(Check(pin.name, v.ok, pin.name in need, note, v.fix or ""))
    return checks


def ci_lines(ctx: CIContext) -> list[str]:
    rows = [("platform", ctx.platform.value), ("builder id", ctx.builder_id), ("repository", ctx.repo_url),
            ("commit", ctx.commit), ("ref", ctx.ref), ("workflow", ctx.workflow), ("run", ctx.run_url),
            ("keyless identity", ctx.signer_identity), ("keyless issuer", ctx.signer_issuer)]
    return [f"  {k:<17} {v}" for k, v in rows if v]


def oidc_check(ctx: CIContext, security: SecurityConfig | None) -> Check:
    keyless = security is not None and security.signing.enabled and security.signing.keyless
    return Check("oidc", ctx.oidc.available, keyless, f"{ctx.oidc.kind.value}: {ctx.oidc.detail}", ctx.oidc.fix)


def run(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    security: SecurityConfig | None = None
    if args.config or args.stack or env.get("SC_CI_CONFIG"):
        security = config.load(env=env, config_path=args.config, stack=args.stack,
                               environment=args.environment, project_root=Path.cwd()).security
    checks = tool_checks(env, required_tools(security))
    print("Tools")
    for c in checks:
        print(_line(c))
    if not args.tools_only:
        ctx = ci.detect(env)
        print("CI context")
        print("\n".join(ci_lines(ctx)))
        print("Keyless signing (OIDC)")
        oidc = oidc_check(ctx, security)
        checks.append(oidc)
        print(_line(oidc))
        if security is not None:
            enabled = ", ".join(security.enabled_features()) or "nothing"
            print(f"Config\n  enabled: {enabled}")
    missing = [c for c in checks if c.required and not c.ok]
    print(f"\n{'not ready: ' + ', '.join(c.name for c in missing) if missing else 'ready'}")
    return 1 if missing else 0


def _line(c: Check) -> str:
    mark = "ok  " if c.ok else ("FAIL" if c.required else "warn")
    text = f"  {mark} {c.name:<10} {sanitize.one_line(c.detail, 400)}"
    if not c.ok and c.fix:
        text += "\n       fix: " + c.fix.strip().replace("\n", "\n            ")
    return text
