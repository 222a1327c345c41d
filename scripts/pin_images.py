"""Pins the suite's images by digest, so that every build and every pod runs the image that was
checked, whatever a tag points to later.

  python scripts/pin_images.py base        # before `docker build`: the Dockerfile's base image
  python scripts/pin_images.py manifests   # after `docker push`, before the first apply:
                                           # the `images:` of every kustomization under k8s/

Each image is resolved from its tag (the Dockerfile's `ARG PYTHON_IMAGE`, a kustomization's
`newName:newTag`) by `crane digest` or `docker buildx imagetools inspect` (--resolver; by
default whichever is installed), and its digest is written beside the tag: `python:TAG@sha256:..`
in the Dockerfile, `digest: sha256:...` in the kustomization, which kustomize renders as
`name:tag@sha256:...`. Run it again to move to what the tags point to now.
"""

from __future__ import annotations

import argparse
import io
import json
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

REPO = Path(__file__).resolve().parents[1]
DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
BASE_IMAGE = re.compile(
    r"^(?P<head>ARG PYTHON_IMAGE=)(?P<ref>[^@\s]+)(?:@sha256:[0-9a-f]{64})?$", re.MULTILINE
)
RESOLVERS = ("crane", "docker")


def base_image(dockerfile: str) -> str:
    """The Dockerfile's base image, by tag (without any digest)."""
    match = BASE_IMAGE.search(dockerfile)
    if not match:
        raise ValueError("the Dockerfile has no `ARG PYTHON_IMAGE=<image>`")
    return match.group("ref")


def pin_base_image(dockerfile: str, digest: str) -> str:
    """The Dockerfile with its base image pinned to a digest, every other line as it was."""
    _check(digest)
    base_image(dockerfile)
    return BASE_IMAGE.sub(lambda m: f"{m['head']}{m['ref']}@{digest}", dockerfile, count=1)


def kustomization_images(kustomization: str) -> list[str]:
    """The images a kustomization sets, as `name:tag` references to resolve."""
    return [_reference(entry) for entry in _yaml().load(kustomization).get("images") or []]


def pin_kustomization(kustomization: str, digests: Mapping[str, str]) -> str:
    """The kustomization with a `digest:` for each image it sets (from `name:tag` to digest),
    its comments, order and every other line as they were."""
    yaml = _yaml()
    document = yaml.load(kustomization)
    for entry in document.get("images") or []:
        digest = _check(digests[_reference(entry)])
        last, added = list(entry)[-1], "digest" not in entry
        entry["digest"] = digest
        # A comment after the old last key belongs below the entry: move it past the new one.
        if added and last in entry.ca.items:
            entry.ca.items["digest"] = entry.ca.items.pop(last)
    out = io.StringIO()
    yaml.dump(document, out)
    return out.getvalue()


def kustomizations(k8s: Path) -> Iterator[Path]:
    """Every kustomization.yaml under k8s/ that sets images."""
    for path in sorted(k8s.rglob("kustomization.yaml")):
        if kustomization_images(path.read_text()):
            yield path


def resolve(reference: str, resolver: str) -> str:
    """The digest a registry gives for an image reference now (of its index, for an image of
    several platforms, so each node pulls its own)."""
    if resolver == "crane":
        command = ["crane", "digest", reference]
    else:
        command = ["docker", "buildx", "imagetools", "inspect", reference]
        command += ["--format", "{{json .Manifest}}"]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        raise LookupError(f"{reference}: {' '.join(command[:2])} failed: {result.stderr.strip()}")
    output = result.stdout.strip()
    digest = output if resolver == "crane" else json.loads(output)["digest"]
    return _check(digest)


def pin_base(dockerfile: Path, lookup: Callable[[str], str]) -> None:
    text = dockerfile.read_text()
    reference = base_image(text)
    digest = lookup(reference)
    dockerfile.write_text(pin_base_image(text, digest))
    print(f"{dockerfile.name}: {reference}@{digest}")


def pin_manifests(k8s: Path, lookup: Callable[[str], str]) -> None:
    # Every image is resolved before any file changes, so a missing tag leaves k8s/ as it was.
    pinned = {}
    for path in kustomizations(k8s):
        text = path.read_text()
        digests = {reference: lookup(reference) for reference in kustomization_images(text)}
        pinned[path] = pin_kustomization(text, digests)
        for reference, digest in digests.items():
            print(f"{path.relative_to(k8s.parent)}: {reference}@{digest}")
    for path, text in pinned.items():
        path.write_text(text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=("base", "manifests"))
    parser.add_argument("--resolver", choices=RESOLVERS, help="default: the first installed")
    args = parser.parse_args(argv)
    resolver = args.resolver or next((name for name in RESOLVERS if shutil.which(name)), None)
    if resolver is None:
        parser.error("neither crane nor docker is installed")
    cache: dict[str, str] = {}

    def lookup(reference: str) -> str:
        if reference not in cache:
            cache[reference] = resolve(reference, resolver)
        return cache[reference]

    try:
        if args.what == "base":
            pin_base(REPO / "Dockerfile", lookup)
        else:
            pin_manifests(REPO / "k8s", lookup)
    except LookupError as error:
        print(f"not pinned: {error}", file=sys.stderr)
        return 1
    return 0


def _reference(entry: Mapping[str, Any]) -> str:
    name = entry.get("newName") or entry["name"]
    if "newTag" not in entry:
        raise ValueError(f"image {entry['name']}: no newTag to resolve a digest from")
    return f"{name}:{entry['newTag']}"


def _check(digest: str) -> str:
    if not DIGEST.fullmatch(digest):
        raise ValueError(f"not a sha256 digest: {digest!r}")
    return digest


def _yaml() -> YAML:
    yaml = YAML()  # round-trip: comments, order and quotes stay
    yaml.preserve_quotes = True
    yaml.indent(mapping=2, sequence=4, offset=2)
    yaml.width = 4096
    return yaml


if __name__ == "__main__":
    sys.exit(main())
