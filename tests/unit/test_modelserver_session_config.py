"""--tensorflow_session_config_file, as in tensorflow_model_server: a text-format ConfigProto for
every version's session, whose thread counts the two parallelism flags override when given."""

from __future__ import annotations

from pathlib import Path

import pytest
from tensorflow.core.protobuf import config_pb2

from services.modelserver.config import read_session_config_file
from services.modelserver.errors import StartupError
from services.modelserver.servable import session_config
from services.modelserver.settings import parse_settings

NO_SPINNING = "intra_op_parallelism_threads: 3\nexperimental { disable_thread_spinning: true }\n"


def test_the_file_is_read_as_a_config_proto(tmp_path: Path) -> None:
    path = tmp_path / "session.config"
    path.write_text(NO_SPINNING)
    config = read_session_config_file(str(path))
    assert config is not None
    assert config.intra_op_parallelism_threads == 3
    assert config.experimental.disable_thread_spinning
    assert read_session_config_file("") is None


def test_a_file_that_is_not_a_config_proto_stops_the_start_naming_the_flag(
    tmp_path: Path,
) -> None:
    path = tmp_path / "session.config"
    path.write_text("no_such_field: 1\n")
    with pytest.raises(StartupError, match="--tensorflow_session_config_file: Invalid protobuf"):
        read_session_config_file(str(path))
    with pytest.raises(StartupError, match="--tensorflow_session_config_file: cannot read"):
        read_session_config_file(str(tmp_path / "missing.config"))


def test_the_parallelism_flags_override_the_files_thread_counts_only_when_given() -> None:
    base = config_pb2.ConfigProto(intra_op_parallelism_threads=3, inter_op_parallelism_threads=4)
    base.experimental.disable_thread_spinning = True
    kept = session_config(0, 0, base)
    assert (kept.intra_op_parallelism_threads, kept.inter_op_parallelism_threads) == (3, 4)
    assert kept.experimental.disable_thread_spinning
    overridden = session_config(1, 2, base)
    assert (overridden.intra_op_parallelism_threads, overridden.inter_op_parallelism_threads) == (
        1,
        2,
    )
    assert overridden.experimental.disable_thread_spinning
    assert base.intra_op_parallelism_threads == 3  # the file's config is left as read
    assert session_config(0, 0) == config_pb2.ConfigProto()


def test_the_flag_is_one_of_the_servers() -> None:
    settings = parse_settings(
        ["--model_base_path=/models/a", "--tensorflow_session_config_file=/etc/session.config"]
    )
    assert settings.tensorflow_session_config_file == "/etc/session.config"
