"""The image tests: the build-and-run test only under `make image-test` (SC_CI_IMAGE_TEST=1)."""

from __future__ import annotations

import os

import pytest

# Building the image takes minutes, so `make test` leaves test_image.py out; the static checks of
# Dockerfile inputs (test_image_inputs.py) run everywhere.
collect_ignore = [] if os.environ.get("SC_CI_IMAGE_TEST") == "1" else ["test_image.py"]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "image: builds the container image with buildah and runs it (make image-test)")
