"""sc-security-action: one declarative supply-chain release step for container images."""

__version__ = "0.1.0"
