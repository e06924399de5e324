"""Render the CI surfaces from the engine's one list of inputs: action.yml (GitHub), the GitLab component
templates/sc-security.yml and its plain-include twin .gitlab-ci-component.yml.

    python tools/lint/ci_files.py          # rewrite the three files
    python tools/lint/ci_files.py --check  # exit 1 and a diff when a file is out of step (make lint-ci)
"""

from __future__ import annotations

import difflib
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from sc_ci import __version__  # noqa: E402
from sc_ci.commands.action import ACTION_FLAGS  # noqa: E402
from sc_ci.config import ACTION_INPUTS  # noqa: E402
from sc_ci.config.diagnose import canonical  # noqa: E402
from sc_ci.config.model import SecurityConfig  # noqa: E402

IMAGE = f"ghcr.io/simple-container-com/sc-security-action:{__version__}"

CREDENTIALS = {
    "registry-host": "The one registry host registry-username / registry-password are sent to. Default: the host "
                     "of `registry`, else the CI's registry (ghcr.io on GitHub, CI_REGISTRY on GitLab).",
    "registry-username": "User for the registry named by registry-host. On GitHub a docker/login-action login on "
                         "the runner is not visible inside this container action: pass the credentials here (or "
                         "see docs/ci.md for DOCKER_CONFIG). Default: none (GitLab: CI_REGISTRY_USER).",
    "registry-password": "Password or token for that registry (pass a secret, e.g. secrets.GITHUB_TOKEN for ghcr.io "
                         "with `permissions: packages: write`); masked before anything prints. Default: none "
                         "(GitLab: CI_REGISTRY_PASSWORD).",
    "cosign-password": "Password of an encrypted cosign private key (pass a secret); masked before anything "
                       "prints. Default: none.",
}

OUTPUTS = {
    "digests": "The released images by digest (one per line).",
    "signed": "The images that were signed (one per line).",
    "verify-commands": "The `cosign verify` / `cosign verify-attestation` commands a consumer can run "
                       "(one per line).",
    "status": "The release verdict: passed, degraded (failures tolerated by the fail-open policy) or failed.",
    "failed-steps": "How many steps failed the release.",
    "tolerated-steps": "How many steps failed but were tolerated by the fail-open policy.",
    "tag": "The git tag of the release (with `tag: true`).",
    "critical-count": "Critical vulnerabilities found, merged across scanners and images (when scanning).",
    "high-count": "High vulnerabilities found (when scanning).",
    "medium-count": "Medium vulnerabilities found (when scanning).",
    "low-count": "Low vulnerabilities found (when scanning).",
    "scan-verdict": "passed or failed: whether a fail-on gate tripped or a scan failed (when scanning).",
    "release-json": "Path of release.json, the release manifest (with output-dir).",
    "scan-report": "Path of scan-report.json, the merged findings (with output-dir, when scanning).",
    "sarif": "Path of scan.sarif for github/codeql-action/upload-sarif (with output-dir, when scanning).",
    "gitlab-report": "Path of gl-container-scanning-report.json (with output-dir, when scanning).",
    "scan-comment": "Path of scan-comment.md, a findings table for a pull-request comment (with output-dir, "
                    "when scanning).",
}

GROUPS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("what to release", ("config", "images", "stack", "environment", "registry", "version")),
    ("signing", ("sign", "keyless", "private-key", "public-key", "cosign-password", "verify", "storage",
                 "transparency-log", "oidc-issuer", "identity-regexp")),
    ("SBOM", ("sbom", "sbom-format", "sbom-extra-formats", "sbom-output")),
    ("provenance", ("provenance",)),
    ("scanning", ("scan", "scan-tools", "fail-on", "only-fixed", "ignore-file", "vex")),
    ("DefectDojo", ("defectdojo", "defectdojo-url", "defectdojo-api-key", "defectdojo-product",
                    "defectdojo-engagement")),
    ("policy", ("fail-open", "fail-fast")),
    ("registry login", ("registry-host", "registry-username", "registry-password")),
    ("run", ("cache-dir", "output-dir", "shard", "dry-run", "tag", "tag-pattern", "push-tag")),
)

# Values a GitLab input may take besides "" (= not set: the config file or the default applies).
ENUMS = {"storage": ("legacy", "referrers", "both"), "sbom-format": ("cyclonedx-json", "spdx-json", "syft-json"),
         "fail-on": ("critical", "high", "medium", "low")}
# GitLab-only defaults: where the job writes files its artifacts:reports read.
GITLAB_DEFAULTS = {"output-dir": "sc-ci-output", "sbom-output": "sc-ci-output/sbom/"}
_NO_REFS = (" GitLab expands $VAR and ${VAR} in input values, so ${secret:…} / ${env:…} do not survive: pass "
            "env://VAR naming a masked variable, or $VAR itself.")
GITLAB_NOTES = {
    "output-dir": " GitLab: the artifacts (container_scanning report, release.json) are read from here; keep it "
                  "set.",
    "sbom-output": " GitLab: the cyclonedx report reads *.cdx.json from here; empty keeps the config file's.",
    "keyless": " GitLab: needs the id_tokens block above in your own .gitlab-ci.yml.",
    "private-key": _NO_REFS,
    "public-key": _NO_REFS,
    "defectdojo-api-key": _NO_REFS,
    "cosign-password": " GitLab: pass $VAR naming a masked variable.",
    "registry-password": " GitLab: pass $VAR naming a masked variable.",
}


def descriptions() -> dict[str, str]:
    found = {i.name: i.description for i in ACTION_INPUTS} | CREDENTIALS | ACTION_FLAGS
    listed = [n for _, names in GROUPS for n in names]
    if sorted(listed) != sorted(found):
        raise SystemExit(f"GROUPS and the inputs differ: {sorted(set(listed) ^ set(found))}")
    return found


def is_bool(name: str) -> bool:
    if name in ACTION_FLAGS:
        return True
    spec = next((i for i in ACTION_INPUTS if i.name == name), None)
    if spec is None:
        return False
    if spec.target == "runtime.dry_run":
        return True
    if not spec.target.startswith("security."):
        return False
    return canonical(SecurityConfig, spec.target.split(".")[1:], where=name)[1] == "bool"


def q(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)


def _runs_image() -> str:
    """Kept as it is: `Dockerfile` on main; a release commit names the published image by digest
    (docker://ghcr.io/…@sha256:…, written by the release workflow)."""
    import yaml

    try:
        data = yaml.safe_load((ROOT / "action.yml").read_text(encoding="utf-8"))
        image = data["runs"]["image"]
    except (OSError, KeyError, TypeError, yaml.YAMLError):
        return "Dockerfile"
    return image if isinstance(image, str) and image else "Dockerfile"


def action_yml() -> str:
    desc = descriptions()
    out = [
        "# GitHub container action: the sc-ci release (scan, sign, SBOM, provenance, verify) of container images.",
        "# Generated by tools/lint/ci_files.py from sc_ci.config.ACTION_INPUTS (+ the credential and tag inputs of",
        "# sc_ci/commands/action.py); `make lint-ci` fails when it is out of step. Every input is optional and",
        "# has no `default:`: an empty input means \"not set\", so the config file or the documented default",
        "# applies (docs/configuration.md). Registry login: docs/ci.md.",
        "name: sc-security-action",
        "description: >-",
        "  Supply-chain release for container images in one step: vulnerability scanning, Cosign signing",
        "  (keyless or key/KMS), SBOM and SLSA provenance attestations, and verification, by digest.",
        "author: Simple Container",
        "branding:",
        "  icon: shield",
        "  color: green",
        "",
        "inputs:",
    ]
    for title, names in GROUPS:
        out.append(f"  # {title}")
        for name in names:
            out += [f"  {name}:", f"    description: {q(desc[name])}", "    required: false"]
    out += ["", "outputs:"]
    for name, text in OUTPUTS.items():
        out += [f"  {name}:", f"    description: {q(text)}"]
    out += ["", "runs:", "  using: docker", f"  image: {q(_runs_image())}", ""]
    return "\n".join(out)


def _header(plain: bool) -> list[str]:
    if plain:
        return [
            "# Plain-include twin of the sc-security CI/CD component (templates/sc-security.yml), for projects",
            "# that do not use the CI/CD catalog. Generated by tools/lint/ci_files.py; identical jobs and inputs.",
            "#   include:",
            "#     - project: simple-container-com/sc-security-action",
            f"#       ref: {__version__}",
            "#       file: .gitlab-ci-component.yml",
            "#       inputs:",
            "#         images: $CI_REGISTRY_IMAGE:$CI_COMMIT_SHORT_SHA",
            "#         sign: \"true\"",
        ]
    return [
        "# GitLab CI/CD component: the sc-ci release as one job. Generated by tools/lint/ci_files.py from",
        "# sc_ci.config.ACTION_INPUTS; `make lint-ci` fails when it is out of step.",
        "#   include:",
        f"#     - component: $CI_SERVER_FQDN/simple-container-com/sc-security-action/sc-security@{__version__}",
        "#       inputs:",
        "#         images: $CI_REGISTRY_IMAGE:$CI_COMMIT_SHORT_SHA",
        "#         sign: \"true\"",
    ]


def gitlab_yml(plain: bool) -> str:
    desc = descriptions()
    out = [
        *_header(plain),
        "#",
        "# Inputs reach the engine as INPUT_<NAME> job variables (the GitHub action's contract; `-` becomes `_`):",
        "# an input left at \"\" sets only its own INPUT_ variable to \"\", which the engine reads as \"not set\",",
        "# so no SC_CI_* variable of your project, group or pipeline is ever hidden by an empty job variable.",
        "# Precedence is the engine's: SC_CI_* variables > inputs > the config file > defaults.",
        "#",
        "# Keyless signing needs an id_tokens block, and GitLab only honours it in YOUR project's own",
        "# .gitlab-ci.yml (not in an included file). Add it to the job (same name as job-name):",
        "#   sc-security:",
        "#     id_tokens:",
        "#       SIGSTORE_ID_TOKEN:",
        "#         aud: sigstore",
        "#",
        "# Registry login: CI_REGISTRY_USER / CI_REGISTRY_PASSWORD (else gitlab-ci-token / CI_JOB_TOKEN) for",
        "# CI_REGISTRY only, unless registry-username / registry-password are given.",
        "spec:",
        "  inputs:",
        "    job-name:",
        "      type: string",
        "      default: sc-security",
        "      description: \"Name of the job (add id_tokens to a job of this name in your own .gitlab-ci.yml).\"",
        "    stage:",
        "      type: string",
        "      default: test",
        "      description: \"Pipeline stage of the job; `test` exists in GitLab's default stages.\"",
        "    engine-image:",
        "      type: string",
        f"      default: {IMAGE}",
        "      description: \"The sc-security-action image (bundles cosign, syft, grype and trivy).\"",
    ]
    for _, names in GROUPS:
        for name in names:
            text = desc[name] + GITLAB_NOTES.get(name, "")
            out += [f"    {name}:", "      type: string", f"      default: {q(GITLAB_DEFAULTS.get(name, ''))}"]
            options = ("true", "false") if is_bool(name) else ENUMS.get(name)
            if options:
                out.append(f"      options: [{', '.join(q(o) for o in ('', *options))}]")
            out.append(f"      description: {q(text)}")
    out += [
        "---",
        "\"$[[ inputs.job-name ]]\":",
        "  stage: \"$[[ inputs.stage ]]\"",
        "  image:",
        "    name: \"$[[ inputs.engine-image ]]\"",
        "    entrypoint: [\"\"]",
        "  variables:",
    ]
    for _, names in GROUPS:
        for name in names:
            out.append(f"    INPUT_{name.upper().replace('-', '_')}: \"$[[ inputs.{name} ]]\"")
    out += [
        "  script:",
        "    - sc-ci action",
        "  artifacts:",
        "    when: always",
        "    expire_in: 30 days",
        "    paths:",
        "      - \"$[[ inputs.output-dir ]]/\"",
        "      - sc-ci.env",
        "    reports:",
        "      dotenv: sc-ci.env",
        "      container_scanning: \"$[[ inputs.output-dir ]]/gl-container-scanning-report.json\"",
        "      cyclonedx:",
        "        - \"$[[ inputs.sbom-output ]]*.cdx.json\"",
        "",
    ]
    return "\n".join(out)


FILES = {
    "action.yml": action_yml,
    "templates/sc-security.yml": lambda: gitlab_yml(plain=False),
    ".gitlab-ci-component.yml": lambda: gitlab_yml(plain=True),
}


def main(argv: list[str]) -> int:
    check = "--check" in argv
    stale = 0
    for rel, render in FILES.items():
        path = ROOT / rel
        want = render()
        have = path.read_text(encoding="utf-8") if path.exists() else ""
        if have == want:
            continue
        if check:
            stale += 1
            sys.stdout.writelines(difflib.unified_diff(have.splitlines(True), want.splitlines(True), rel, rel))
        else:
            path.write_text(want, encoding="utf-8")
            print(f"wrote {rel}")
    if stale:
        print(f"\n{stale} file(s) out of step with ACTION_INPUTS: run python tools/lint/ci_files.py", file=sys.stderr)
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
