"""A real registry on 127.0.0.1 and known OCI images in it, shared by the test suite and `sc-ci demo`."""

from testbed.images import (
    IMAGE_NAMES,
    KNOWN_PACKAGES,
    KnownContents,
    KnownPackage,
    PushedImage,
    known_packages,
    push_demo_images,
    push_image,
)
from testbed.oci import RegistryClient, RegistryHTTPError
from testbed.registry import LocalRegistry, RegistryStartError

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
