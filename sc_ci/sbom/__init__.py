"""SBOM formats, file names, validation, size policy and the digest-reference predicate (pure parts)."""
