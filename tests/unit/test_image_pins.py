"""The node image's digest pin after an offline docker load: when labkit gives kind
``name:tag`` instead (only with the recorded image ID as proof), and when it keeps the pin.

Docker is a fake here: it answers kind's own presence check (``docker inspect
--type=image REF``) and ``docker image inspect --format {{.Id}} REF`` from a table.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from labkit.backends.kind import KindBackend
from labkit.course.images import pins as image_pins
from labkit.environments import Stage, pinned
from labkit.errors import ToolNotFound
from labkit.progress import Progress
from labkit.tools.process import Result
from tests.unit.kindfakes import FakeRunner

NODE = pinned("kind", "node_image")
NODE_TAG = NODE.split("@")[0]
SAVED_ID = "sha256:" + "a" * 64
OTHER_ID = "sha256:" + "b" * 64


class Docker:
    """Docker's image store as a dict {reference: image ID}; records every argv."""

    def __init__(self, images: dict[str, str]) -> None:
        self.images = images
        self.calls: list[list[str]] = []

    def __call__(self, argv: list[str], **kw: Any) -> Result:
        argv = list(argv)
        self.calls.append(argv)
        assert kw.get("timeout") and kw.get("check") is False, argv
        if argv[:3] == ["docker", "inspect", "--type=image"]:
            ref = argv[3]
        elif argv[:5] == ["docker", "image", "inspect", "--format", "{{.Id}}"]:
            ref = argv[5]
        else:
            raise AssertionError(f"unexpected {argv}")
        if ref not in self.images:
            return Result(tuple(argv), 1, "", f"Error: No such image: {ref}\n")
        return Result(tuple(argv), 0, f"{self.images[ref]}\n", "")


def test_digest_present_is_kept_without_asking_for_ids() -> None:
    docker = Docker({NODE: SAVED_ID, NODE_TAG: SAVED_ID})
    assert image_pins.node_image_for_kind(NODE, run=docker, pins={NODE: SAVED_ID}) == (NODE, "")
    assert docker.calls == [["docker", "inspect", "--type=image", NODE]]


def test_digest_lost_and_the_tag_has_the_recorded_id_uses_the_tag_with_a_note() -> None:
    docker = Docker({NODE_TAG: SAVED_ID})  # what `docker load` leaves on the classic store
    image, note = image_pins.node_image_for_kind(NODE, run=docker, pins={NODE: SAVED_ID})
    assert image == NODE_TAG
    assert note.startswith(f"node image {NODE_TAG} used for {NODE}: ")
    assert "moby#22011" in note and SAVED_ID in note and "\n" not in note
    assert docker.calls[-1] == ["docker", "image", "inspect", "--format", "{{.Id}}", NODE_TAG]


@pytest.mark.parametrize("images, pins, why", [
    ({NODE_TAG: OTHER_ID}, {NODE: SAVED_ID}, f"has image ID {OTHER_ID}, not the {SAVED_ID}"),
    ({}, {NODE: SAVED_ID}, "has image ID none"),  # not even the tag
    ({NODE_TAG: SAVED_ID}, {}, None),  # no record: nothing proves the tag is the pin
    ({NODE_TAG: SAVED_ID}, {NODE_TAG + "@sha256:" + "c" * 64: SAVED_ID}, None),  # another pin
])
def test_digest_lost_without_proof_keeps_the_digest(images, pins, why) -> None:
    image, note = image_pins.node_image_for_kind(NODE, run=Docker(images), pins=pins)
    assert image == NODE
    if why is None:
        assert note == ""
    else:
        assert note.startswith(f"kept the digest pin {NODE}: ") and why in note


def test_no_docker_or_no_digest_keeps_the_reference() -> None:
    def missing(argv: list[str], **kw: Any) -> Result:
        raise ToolNotFound("'docker' is not installed or not on PATH", command=" ".join(argv))

    assert image_pins.node_image_for_kind(NODE, run=missing, pins={NODE: SAVED_ID}) == (NODE, "")
    docker = Docker({})
    assert image_pins.node_image_for_kind("kindest/node:v1", run=docker) == ("kindest/node:v1", "")
    assert docker.calls == []


def test_recorded_pins_come_from_labkit_home_and_merge(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("LABKIT_HOME", str(tmp_path / "home"))
    assert image_pins.stored() == {}
    first = image_pins.store({NODE: OTHER_ID, "x:1@sha256:" + "d" * 64: SAVED_ID})
    assert first == tmp_path / "home" / "images" / "pins.json"
    image_pins.store({NODE: SAVED_ID})  # a newer bundle wins for the same pin
    assert image_pins.stored() == {NODE: SAVED_ID, "x:1@sha256:" + "d" * 64: SAVED_ID}
    image, _ = image_pins.node_image_for_kind(NODE, run=Docker({NODE_TAG: SAVED_ID}))
    assert image == NODE_TAG
    first.write_text("{not json")  # a damaged record proves nothing
    assert image_pins.stored() == {}
    assert image_pins.node_image_for_kind(NODE, run=Docker({NODE_TAG: SAVED_ID}))[0] == NODE


@pytest.mark.parametrize("text", [
    "[]", json.dumps({"format": 2, "pins": []}),
    json.dumps({"format": 1, "pins": [{"ref": NODE, "id": "abc"}]}),
    json.dumps({"format": 1, "pins": ["x"]}),
])
def test_a_pins_document_is_checked(text) -> None:
    with pytest.raises(ValueError):
        image_pins.from_json(text)
    pins = {NODE: SAVED_ID}
    assert image_pins.from_json(image_pins.to_json(pins)) == pins


def test_record_asks_docker_for_each_tag_and_digest_pin_only() -> None:
    docker = Docker({NODE: SAVED_ID})
    assert image_pins.record([NODE, "quay.io/x:1", "y@sha256:" + "e" * 64], run=docker) == \
        {NODE: SAVED_ID}
    assert docker.calls == [["docker", "image", "inspect", "--format", "{{.Id}}", NODE]]


# -- the kind backend writes what the decision says ------------------------------------------
class KindAndDocker(FakeRunner):
    def __init__(self, images: dict[str, str]) -> None:
        super().__init__()
        self.docker = Docker(images)

    def __call__(self, argv: list[str], **kwargs: Any) -> Result:
        if argv[0] == "docker":
            self.calls.append(list(argv))
            return self.docker(argv, **kwargs)
        return super().__call__(argv, **kwargs)


def _up(tmp_path: Path, images: dict[str, str]) -> tuple[list[str], str, KindAndDocker]:
    run = KindAndDocker(images)
    b = KindBackend(Stage.load("flannel"), run=run, kube_factory=lambda ctx: _NoNodes(),
                    kubeconfig_loader=lambda: _kubeconfig(), sleep=lambda s: None,
                    workdir=tmp_path / "work")
    out = tmp_path / "progress.txt"
    with out.open("w") as stream:
        b.up(Progress("cluster cni-lab", stream=stream, mode="plain"))
    config = yaml.safe_load(run.configs[0])
    return [n["image"] for n in config["nodes"]], out.read_text(), run


class _NoNodes:
    def list(self, api: str, kind: str, namespace: str | None = None) -> list[Any]:
        return []


def _kubeconfig() -> dict[str, Any]:
    ctx = "kind-cni-lab"
    return {"current-context": ctx, "contexts": [{"name": ctx, "context": {"cluster": ctx}}],
            "clusters": [{"name": ctx, "cluster": {"server": "https://127.0.0.1:3"}}]}


def test_up_gives_kind_the_tag_only_with_the_recorded_id(tmp_path) -> None:
    image_pins.store({NODE: SAVED_ID})
    images, progress, run = _up(tmp_path, {NODE_TAG: SAVED_ID})
    assert images == [NODE_TAG] * 3
    assert f"node image {NODE_TAG} used for {NODE}" in progress
    created = next(i for i, c in enumerate(run.calls) if c[:3] == ["kind", "create", "cluster"])
    assert ["docker", "inspect", "--type=image", NODE] in run.calls[:created]


@pytest.mark.parametrize("images", [{NODE: SAVED_ID, NODE_TAG: SAVED_ID},
                                    {NODE_TAG: OTHER_ID}, {}])
def test_up_keeps_the_digest_otherwise(tmp_path, images) -> None:
    image_pins.store({NODE: SAVED_ID})
    written, progress, _ = _up(tmp_path, images)
    assert written == [NODE] * 3
    assert "used for" not in progress
