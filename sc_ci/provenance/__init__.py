"""SLSA v1 provenance for container images: statements built from the CI context, checked on verify."""
