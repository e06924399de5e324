"""Sigstore material read by this engine itself, never trusted on its own: what the registry stores for a
digest (signatures, attestations, their certificates), Fulcio's certificate extensions, and the binding of a
certificate to a signature cosign verified. cosign stays the verifier; this says *which* signer it was."""
