"""A real registry on 127.0.0.1 and known OCI images in it, shared by the test suite and `sc-ci demo`."""

from sc_ci.demo.images import (
    IMAGE_NAMES,
    KNOWN_PACKAGES,
    KnownContents,
    KnownPackage,
    PushedImage,
    known_packages,
    push_demo_images,
    push_image,
)
from sc_ci.demo.oci import RegistryClient, RegistryHTTPError
from sc_ci.demo.registry import LocalRegistry, RegistryStartError

__all__ = [
    "IMAGE_NAMES",
    "KNOWN_PACKAGES",
    "KnownContents",
    "KnownPackage",
    "LocalRegistry",
    "PushedImage",
    "RegistryClient",
    "RegistryHTTPError",
    "RegistryStartError",
    "known_packages",
    "push_demo_images",
    "push_image",
]
