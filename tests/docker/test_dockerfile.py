"""docker/Dockerfile itself, built on the local Docker engine, then run: ``automl-noisy --help``, the torch
build it holds, and a 2-trial search without network.

No image registry is reachable where the tests run, so ``BASE`` is the test base image (``conftest.py``:
Debian bookworm with its Python 3.11) instead of ``python:3.11.15-slim-bookworm``; everything else is the
shipped Dockerfile, unchanged. pip in the build takes its packages from this machine's package index, as
``pip config list`` gives it: its local folders (``file://`` indexes, ``find-links`` folders) are served
over HTTP on 127.0.0.1 for the build, which runs with ``--network host``, and come first, so a file held
locally is never downloaded again; remote indexes follow. The build's time and the image's size are
printed (``pytest -s``); the image, its intermediate layers and containers are removed afterwards, so
repeated runs do not fill the disk (the image is about 7.3 GB with torch's CUDA build, 0.65 GB of it the base).
"""

from __future__ import annotations

import ast
import functools
import http.server
import os
import re
import secrets
import subprocess
import sys
import threading
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = pytest.mark.docker

ROOT = Path(__file__).resolve().parents[2]
SEARCH = ("automl-noisy search --data synthetic --samples 300 --dims 8 --classes 3 --space quick --trials 2 "
          "--no-portfolio --executor local --no-progress")


class _QuietFiles(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base class's name
        pass


def _pip_settings() -> dict[str, list[str]]:
    """index-url, extra-index-url and find-links of this machine's pip (every scope, environment included)."""
    listed = subprocess.run([sys.executable, "-m", "pip", "config", "list"], capture_output=True, text=True,
                            check=True).stdout
    found: dict[str, list[str]] = {"index-url": [], "extra-index-url": [], "find-links": []}
    for line in listed.splitlines():
        key, _, value = line.partition("=")
        option = key.rsplit(".", 1)[-1]
        if option in found:
            found[option] += [v for v in ast.literal_eval(value).split() if v not in found[option]]
    return found


def _local_folder(location: str) -> Path | None:
    if location.startswith("file:"):
        return Path(urllib.parse.unquote(urllib.parse.urlsplit(location).path))
    return Path(location) if location.startswith("/") else None


class _PackageIndex:
    """This machine's pip settings as build arguments, its local folders served over HTTP meanwhile."""

    def __init__(self) -> None:
        self.servers: list[http.server.ThreadingHTTPServer] = []

    def serve(self, folder: Path) -> str:
        """``folder`` on a port of its own on 127.0.0.1; returns its URL."""
        handler = functools.partial(_QuietFiles, directory=str(folder))
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        self.servers.append(server)
        return f"http://127.0.0.1:{server.server_port}/"

    def build_args(self) -> dict[str, str]:
        settings = _pip_settings()
        indexes = (settings["index-url"] or ["https://pypi.org/simple"]) + settings["extra-index-url"]
        local, remote = [], []
        for index in indexes:
            folder = _local_folder(index)
            if folder is None:
                remote.append(index)
            else:  # an index's pages link its files relatively (../../files/...): serve the folder above it
                local.append(self.serve(folder.parent) + urllib.parse.quote(folder.name) + "/")
        links = [self.serve(folder) if (folder := _local_folder(f)) is not None else f
                 for f in settings["find-links"]]
        ordered = local + remote
        args = {"PIP_INDEX_URL": ordered[0], "PIP_EXTRA_INDEX_URL": " ".join(ordered[1:])}
        if links:
            args["PIP_FIND_LINKS"] = " ".join(links)
        return args

    def close(self) -> None:
        for server in self.servers:
            server.shutdown()
            server.server_close()


@pytest.fixture
def built_image(docker_engine) -> Iterator[str]:
    """docker/Dockerfile built with the test base image; removed, with everything the build left, afterwards."""
    tag = f"automl-noisy-test-build:{secrets.token_hex(4)}"
    index = _PackageIndex()
    output = ""
    try:
        build_args = {"BASE": docker_engine, **index.build_args()}
        argv = ["docker", "build", "--network", "host", "--force-rm", "-f", str(ROOT / "docker" / "Dockerfile"),
                "-t", tag, *[a for k, v in build_args.items() for a in ("--build-arg", f"{k}={v}")], str(ROOT)]
        started = time.monotonic()
        built = subprocess.run(argv, capture_output=True, text=True, timeout=3000,
                               env={**os.environ, "DOCKER_BUILDKIT": "0"})  # the classic builder: no buildx needed
        seconds = time.monotonic() - started
        output = built.stdout
        assert built.returncode == 0, (built.stdout + built.stderr)[-4000:]
        size = int(subprocess.run(["docker", "image", "inspect", "-f", "{{.Size}}", tag], capture_output=True,
                                  text=True, check=True).stdout)
        print(f"\ndocker/Dockerfile built in {seconds:.0f} s; image {size / 1e9:.2f} GB ({tag})")
        yield tag
    finally:
        index.close()
        subprocess.run(["docker", "rmi", "-f", tag], capture_output=True, timeout=600)
        base_id = subprocess.run(["docker", "image", "inspect", "-f", "{{.Id}}", docker_engine], capture_output=True,
                                 text=True).stdout.strip().removeprefix("sha256:")
        for layer in dict.fromkeys(re.findall(r"---> ([0-9a-f]{12})\b", output)):  # a failed build's layers too
            if not base_id.startswith(layer):
                subprocess.run(["docker", "rmi", layer], capture_output=True, timeout=600)
        subprocess.run(["docker", "builder", "prune", "-f"], capture_output=True, timeout=600)


def _run(tag: str, command: str, timeout: float = 600) -> subprocess.CompletedProcess:
    """``command`` in a new container of ``tag``, without network (nothing may be downloaded at run time)."""
    return subprocess.run(["docker", "run", "--rm", "--network", "none", "--shm-size", "512m", tag, "sh", "-c",
                           command], capture_output=True, text=True, timeout=timeout)


@pytest.mark.timeout(3600)
def test_the_dockerfile_builds_and_its_image_runs_a_search(built_image):
    shown = _run(built_image, "automl-noisy --help")
    assert shown.returncode == 0 and "search" in shown.stdout and "dashboard" in shown.stdout, shown.stderr
    torch = _run(built_image, "python -c 'import torch; print(torch.__version__, torch.version.cuda)'")
    assert torch.returncode == 0 and torch.stdout.split()[0].split("+")[0] == "2.14.1", torch.stdout + torch.stderr
    assert torch.stdout.split()[1].startswith("13.0"), torch.stdout  # the default wheel: CUDA 13.0 inside
    search = _run(built_image, SEARCH)
    assert search.returncode == 0, (search.stdout + search.stderr)[-4000:]
    assert "2 trials (2 complete" in search.stdout, search.stdout[-2000:]
