"""Model config files, version policies and the version directories of a model repository."""

from __future__ import annotations

from pathlib import Path

import pytest
from tensorflow_serving.config import model_server_config_pb2
from tf_serving_testdata import TESTDATA, needs_testdata

from services.modelserver.config import (
    ModelDefinition,
    VersionPolicy,
    build_single_model_config,
    load_model_definitions,
    model_definitions_from_config,
    read_model_config_file,
)
from services.modelserver.errors import StartupError
from services.modelserver.repository import (
    BasePathNotFoundError,
    list_version_dirs,
    select_versions,
)
from services.modelserver.server import MAX_MESSAGE_BYTES, channel_options
from services.modelserver.settings import ModelServerSettings


def _config(text: str) -> model_server_config_pb2.ModelServerConfig:
    from google.protobuf import text_format

    return text_format.Parse(text, model_server_config_pb2.ModelServerConfig())


@needs_testdata
def test_good_model_config_file_with_placeholders_filled(tmp_path: Path) -> None:
    text = (TESTDATA / "good_model_config.txt").read_text()
    text = text.replace("${TEST_HALF_PLUS_TWO_DIR}", "/models/half_plus_two")
    text = text.replace("${TEST_HALF_PLUS_THREE_DIR}", "/models/half_plus_three")
    config_file = tmp_path / "models.config"
    config_file.write_text(text)

    definitions = load_model_definitions(ModelServerSettings(model_config_file=str(config_file)))

    assert definitions == [
        ModelDefinition("half_plus_two", Path("/models/half_plus_two")),
        ModelDefinition("half_plus_three", Path("/models/half_plus_three")),
    ]
    assert definitions[0].version_policy == VersionPolicy(kind="latest", num_versions=1)


@needs_testdata
def test_bad_model_config_file_names_the_file() -> None:
    bad = TESTDATA / "bad_model_config.txt"
    with pytest.raises(StartupError) as raised:
        read_model_config_file(str(bad))
    assert "--model_config_file" in str(raised.value)
    assert str(bad) in str(raised.value)


def test_missing_model_config_file_names_the_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.config"
    with pytest.raises(StartupError, match=r"nope\.config"):
        read_model_config_file(str(missing))


def test_flags_build_a_single_tensorflow_model() -> None:
    definitions = load_model_definitions(
        ModelServerSettings(model_name="hp2", model_base_path="/models/hp2")
    )
    assert definitions == [ModelDefinition("hp2", Path("/models/hp2"))]
    assert build_single_model_config("a", "/b").model_config_list.config[0].model_platform == (
        "tensorflow"
    )


def test_version_policies_and_labels() -> None:
    config = _config(
        """
        model_config_list {
          config { name: "all" base_path: "/m/a" model_platform: "tensorflow"
                   model_version_policy { all {} } }
          config { name: "specific" base_path: "/m/s" model_platform: "tensorflow"
                   model_version_policy { specific { versions: 1 versions: 3 } } }
          config { name: "latest2" base_path: "/m/l" model_platform: "tensorflow"
                   model_version_policy { latest { num_versions: 2 } } }
          config { name: "labelled" base_path: "/m/x" model_platform: "tensorflow"
                   version_labels { key: "stable" value: 1 }
                   version_labels { key: "canary" value: 2 } }
        }
        """
    )
    all_, specific, latest2, labelled = model_definitions_from_config(
        config, allow_version_labels_for_unavailable_models=True
    )
    assert all_.version_policy == VersionPolicy(kind="all")
    assert specific.version_policy == VersionPolicy(kind="specific", versions=frozenset({1, 3}))
    assert latest2.version_policy == VersionPolicy(kind="latest", num_versions=2)
    assert labelled.version_labels == {"stable": 1, "canary": 2}


def test_labels_at_startup_need_the_flag_like_tensorflow_serving() -> None:
    config = _config(
        'model_config_list { config { name: "m" base_path: "/m" model_platform: "tensorflow" '
        'version_labels { key: "stable" value: 7 } } }'
    )
    with pytest.raises(StartupError) as raised:
        model_definitions_from_config(config)
    assert str(raised.value).startswith(
        "Request to assign label to version 7 of model m, which is not currently available "
        "for inference"
    )
    assert "--allow_version_labels_for_unavailable_models" in str(raised.value)


@pytest.mark.parametrize(
    ("model", "message"),
    [
        (
            'name: "m" base_path: "models/m" model_platform: "tensorflow"',
            "Expected model m to have an absolute path or URI; got base_path()=models/m",
        ),
        (
            'name: "m" base_path: "/m" model_platform: "pytorch"',
            "Model m requests unsupported platform pytorch",
        ),
        (
            'name: "m" base_path: "/m"',
            "Illegal setting neither ModelServerConfig::model_type (deprecated) "
            "nor ModelServerConfig::model_platform.",
        ),
    ],
)
def test_invalid_model_configs_fail_like_tensorflow_serving(model: str, message: str) -> None:
    with pytest.raises(StartupError) as raised:
        model_definitions_from_config(_config(f"model_config_list {{ config {{ {model} }} }}"))
    assert str(raised.value) == message


def test_a_model_listed_twice_is_refused() -> None:
    model = 'config { name: "m" base_path: "/m" model_platform: "tensorflow" }'
    with pytest.raises(StartupError, match="Illegal to list model m multiple times"):
        model_definitions_from_config(_config(f"model_config_list {{ {model} {model} }}"))


def test_only_integer_directories_are_versions(tmp_path: Path) -> None:
    for name in ["00000123", "124", ".124.tmp-publish", "latest", "assets"]:
        (tmp_path / name).mkdir()
    (tmp_path / "125").write_text("a file, not a version directory")

    assert list_version_dirs(tmp_path) == {123: tmp_path / "00000123", 124: tmp_path / "124"}


def test_missing_base_path(tmp_path: Path) -> None:
    with pytest.raises(BasePathNotFoundError):
        list_version_dirs(tmp_path / "nope")


def test_select_versions_by_policy() -> None:
    on_disk = [1, 2, 3, 10]
    assert select_versions(on_disk, VersionPolicy()) == {10}
    assert select_versions(on_disk, VersionPolicy(kind="latest", num_versions=2)) == {3, 10}
    assert select_versions(on_disk, VersionPolicy(kind="all")) == {1, 2, 3, 10}
    specific = VersionPolicy(kind="specific", versions=frozenset({2, 4}))
    assert select_versions(on_disk, specific) == {2}
    assert select_versions([], VersionPolicy()) == set()


def test_grpc_channel_arguments_like_tensorflow_serving() -> None:
    options = dict(channel_options("grpc.max_connection_age_ms=30000,grpc.primary_user_agent=x"))
    assert options["grpc.max_connection_age_ms"] == 30000
    assert options["grpc.primary_user_agent"] == "x"
    assert options["grpc.max_receive_message_length"] == MAX_MESSAGE_BYTES
    assert (
        dict(channel_options("grpc.max_receive_message_length=1024"))[
            "grpc.max_receive_message_length"
        ]
        == 1024
    )
    with pytest.raises(StartupError, match="key=value"):
        channel_options("no_equals_sign")
