"""Network services the engine talks to directly: OCI registries (and later DefectDojo, OIDC)."""
