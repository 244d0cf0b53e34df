"""What the Docker tests share: a Docker engine (skipped, with the reason, where none answers) and the
test base image.

No image registry is reachable where the tests run, so the base image is made here: Debian bookworm
with ``debootstrap --variant=minbase`` plus the shared libraries CPython's modules load, Debian's
Python 3.11 (``python3``, ``python3-venv``: what ``docker/Dockerfile`` needs of a base), PostgreSQL
15 and this machine's CA certificates (``PIP_CERT`` names them: pip in a build reaches the package
registries as this machine does, through whatever TLS proxy it trusts), imported with ``docker
import``. It is built once per Docker engine (about a minute) and kept. ``.ci/run`` installs ``docker.io``, ``docker-compose`` and ``debootstrap`` and starts
``dockerd``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BASE_IMAGE = "automl-noisy-test-base:bookworm-3"
#: this machine's CA certificates (Debian's bundle), copied into the image
CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
#: what the image adds to Debian's minimal base: the libraries CPython's modules load, Python 3.11
#: with venv, PostgreSQL
PACKAGES = ("libssl3,libffi8,libsqlite3-0,libbz2-1.0,liblzma5,libreadline8,libncursesw6,libuuid1,procps,"
            "python3,python3-venv,postgresql-15")


def ok(*argv: str, timeout: float = 30) -> bool:
    """Whether the command runs and exits 0."""
    try:
        return subprocess.run(argv, capture_output=True, timeout=timeout).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def _build_base_image() -> None:
    with tempfile.TemporaryDirectory(prefix="automl-noisy-rootfs-") as root:
        built = subprocess.run(["debootstrap", "--variant=minbase", f"--include={PACKAGES}", "bookworm", root,
                                "http://deb.debian.org/debian"], capture_output=True, text=True, timeout=900)
        if built.returncode != 0:
            pytest.skip(f"debootstrap could not build the test image: {built.stderr.strip().splitlines()[-1:]}")
        changes = []
        if CA_BUNDLE.is_file():
            (Path(root) / CA_BUNDLE.relative_to("/")).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(CA_BUNDLE, Path(root) / CA_BUNDLE.relative_to("/"))
            changes = ["--change", f"ENV PIP_CERT={CA_BUNDLE}"]
        tar = subprocess.Popen(["tar", "-C", root, "-c", "."], stdout=subprocess.PIPE)
        subprocess.run(["docker", "import", *changes, "-", BASE_IMAGE], stdin=tar.stdout, check=True,
                       capture_output=True, timeout=600)
        assert tar.wait() == 0


@pytest.fixture(scope="session")
def docker_engine() -> str:
    """A Docker engine with the test base image; returns the image's name."""
    if not shutil.which("docker") or not ok("docker", "info"):
        pytest.skip("no Docker engine answers 'docker info' (.ci/run starts dockerd where it can)")
    if not ok("docker", "image", "inspect", BASE_IMAGE):
        if not shutil.which("debootstrap") or os.geteuid() != 0:
            pytest.skip("the test image is missing and building it needs debootstrap, run as root")
        _build_base_image()
    return BASE_IMAGE


@pytest.fixture(scope="session")
def docker_compose(docker_engine) -> list[str]:
    """The compose command (``docker-compose`` 1.29 or ``docker compose``), with the engine and image ready."""
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    if ok("docker", "compose", "version"):
        return ["docker", "compose"]
    pytest.skip("neither docker-compose nor 'docker compose' is installed")
