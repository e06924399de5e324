"""sc-security-action: one declarative supply-chain release step for container images."""

__version__ = "0.2.0"  # the one version: pyproject reads it; CHANGELOG.md, action refs (@v0) follow

import sys as _sys

# jsonschema imports rfc3987_syntax when it is installed (cyclonedx-python-lib's json-validation extra brings
# it), and that import compiles 38 Lark grammars: 2–5 s of CPU in every process that validates a document
# (profiled: 5.1 of `release verify`'s 8.3 s). The one IRI format our documents use is checked by
# sc_ci.sbom.validate.is_iri_reference instead, so the module is kept from loading (an entry of None makes
# its import fail, which jsonschema expects and skips). Already imported by someone else: left alone.
_sys.modules.setdefault("rfc3987_syntax", None)  # type: ignore[arg-type]
