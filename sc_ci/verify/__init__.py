"""The verify side, tool-independent: what a verifier expects of a release and where each expectation came
from (expect.py), the release manifest read as untrusted input (manifest.py), the SLSA Build level an image
reaches (slsa.py) and the NIST SP 800-218 practices each check gives evidence for (ssdf.py)."""
