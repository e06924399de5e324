"""sc-security-action: one declarative supply-chain release step for container images."""

__version__ = "0.2.0"  # the one version: pyproject reads it; CHANGELOG.md, action refs (@v0) follow
