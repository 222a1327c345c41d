"""scripts/pin_images.py: digests written into the Dockerfile and the kustomizations, with every
other line kept, render as images pinned by digest."""

from __future__ import annotations

import difflib
import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest
import yaml
from lock_requirements import base_image_target
from pin_images import (
    base_image,
    kustomization_images,
    kustomizations,
    pin_base_image,
    pin_kustomization,
    pin_manifests,
    resolve,
)
from rendered import K8S, KUSTOMIZATIONS, REPO, containers, tool

DOCKERFILE = REPO / "Dockerfile"
# The kustomizations that set the suite's images.
SETTERS = {"overlays/gpu", "overlays/cpu", "training/job", "loadtest"}


def digest(n: int) -> str:
    return f"sha256:{n:064x}"


def fake_digests(k8s: Path) -> dict[str, str]:
    """A distinct digest for every image reference the kustomizations set."""
    references = sorted(
        {ref for path in kustomizations(k8s) for ref in kustomization_images(path.read_text())}
    )
    return {reference: digest(n) for n, reference in enumerate(references, 1)}


@pytest.fixture
def k8s(tmp_path: Path) -> Path:
    copy = tmp_path / "k8s"
    shutil.copytree(K8S, copy)
    return copy


def test_every_kustomization_that_sets_images_is_found() -> None:
    found = {str(path.parent.relative_to(K8S)) for path in kustomizations(K8S)}
    assert found >= SETTERS
    assert "tensorflow/serving:2.21.0-gpu" in kustomization_images(
        (K8S / "overlays/gpu/kustomization.yaml").read_text()
    )


def test_pinning_adds_one_digest_line_per_image_and_keeps_every_other_line(k8s: Path) -> None:
    digests = fake_digests(k8s)
    for path in kustomizations(k8s):
        before = path.read_text()
        lines = pin_kustomization(before, digests).splitlines()
        added = [i for i, line in enumerate(lines) if line.lstrip().startswith("digest:")]
        assert [lines[i] for i in added] == [
            f"    digest: {digests[ref]}" for ref in kustomization_images(before)
        ], path
        # Each right below its entry's tag, so that no comment changes place.
        assert all(lines[i - 1].startswith("    newTag: ") for i in added), path
        assert [line for i, line in enumerate(lines) if i not in added] == before.splitlines()
        # And where kustomize reads it: in its own entry.
        entries = yaml.safe_load("\n".join(lines))["images"]
        assert [entry["digest"] for entry in entries] == [
            digests[f"{entry.get('newName', entry['name'])}:{entry['newTag']}"] for entry in entries
        ]


def test_pinned_kustomizations_render_every_image_by_digest(k8s: Path) -> None:
    digests = fake_digests(k8s)
    pin_manifests(k8s, digests.__getitem__)
    pinned = {f"{reference}@{d}" for reference, d in digests.items()}
    seen = set()
    for kustomization in KUSTOMIZATIONS:
        output = subprocess.run(
            [tool("kubectl"), "kustomize", str(k8s / kustomization)],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        manifests = tuple(doc for doc in yaml.safe_load_all(output) if doc)
        for workload, box in containers(manifests):
            assert box["image"] in pinned, f"{workload['metadata']['name']}: {box['image']}"
            seen.add(box["image"])
    assert f"tensorflow/serving:2.21.0-gpu@{digests['tensorflow/serving:2.21.0-gpu']}" in seen
    assert seen == pinned  # every image set is used, by its digest


def test_pinning_again_replaces_the_digests_in_place(k8s: Path) -> None:
    digests = fake_digests(k8s)
    path = k8s / "overlays/gpu/kustomization.yaml"
    once = pin_kustomization(path.read_text(), digests)
    moved = {reference: digest(int(d[7:], 16) + 100) for reference, d in digests.items()}
    twice = pin_kustomization(once, moved)
    assert len(twice.splitlines()) == len(once.splitlines())
    assert twice == pin_kustomization(path.read_text(), moved)


def test_a_missing_tag_leaves_every_kustomization_as_it_was(k8s: Path) -> None:
    digests = fake_digests(k8s)
    before = {path: path.read_text() for path in k8s.rglob("*.yaml")}

    def lookup(reference: str) -> str:
        if reference == "tensorflow/serving:2.21.0-gpu":
            raise LookupError(f"{reference}: not found")
        return digests[reference]

    with pytest.raises(LookupError, match=r"2\.21\.0-gpu"):
        pin_manifests(k8s, lookup)
    assert {path: path.read_text() for path in k8s.rglob("*.yaml")} == before


def test_the_base_image_is_pinned_in_the_dockerfile(tmp_path: Path) -> None:
    text = DOCKERFILE.read_text()
    reference = base_image(text)
    pinned = pin_base_image(text, digest(7))
    changed = list(difflib.ndiff(text.splitlines(), pinned.splitlines()))
    assert [line for line in changed if line.startswith("+")] == [
        f"+ ARG PYTHON_IMAGE={reference}@{digest(7)}"
    ]
    assert len([line for line in changed if line.startswith("-")]) == 1
    # Pinned again: the digest is replaced, the tag it came from kept.
    assert base_image(pinned) == reference
    assert pin_base_image(pinned, digest(8)) == pin_base_image(text, digest(8))
    # The locks are still made for the same Python, and hadolint still passes.
    assert base_image_target(pinned) == base_image_target(text)
    copy = tmp_path / "Dockerfile"
    copy.write_text(pinned)
    result = subprocess.run([tool("hadolint"), "--no-color", str(copy)], capture_output=True)
    assert result.returncode == 0, result.stdout


@pytest.mark.parametrize("bad", ["sha256:abc", "sha512:" + "0" * 128, "latest", ""])
def test_only_a_sha256_digest_is_written(bad: str) -> None:
    with pytest.raises(ValueError, match="digest"):
        pin_base_image(DOCKERFILE.read_text(), bad)
    text = (K8S / "loadtest/kustomization.yaml").read_text()
    with pytest.raises(ValueError, match="digest"):
        pin_kustomization(text, dict.fromkeys(kustomization_images(text), bad))


@pytest.mark.parametrize(
    ("resolver", "expected_args", "output"),
    [
        ("crane", f"digest {'{ref}'}", digest(9)),
        (
            "docker",
            "buildx imagetools inspect {ref} --format {{{{json .Manifest}}}}",
            '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json",'
            f'"digest":"{digest(9)}","size":1609}}',
        ),
    ],
)
def test_digests_are_read_from_crane_and_docker(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    resolver: str,
    expected_args: str,
    output: str,
) -> None:
    # A stand-in for the registry tool, which prints what the real one prints for these
    # arguments and fails for any others.
    ref = "tensorflow/serving:2.20.0-gpu"
    program = tmp_path / resolver
    program.write_text(
        "#!/bin/sh\n"
        f'[ "$*" = \'{expected_args.format(ref=ref)}\' ] || {{ echo "args: $*" >&2; exit 1; }}\n'
        f"echo '{output}'\n"
    )
    program.chmod(program.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    assert resolve(ref, resolver) == digest(9)
    with pytest.raises(LookupError, match="other:1"):
        resolve("other:1", resolver)
