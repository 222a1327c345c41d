"""Domain errors map to status codes in one table."""

from __future__ import annotations

import grpc
import pytest

from services.gateway import errors
from services.gateway.backend_status import BACKEND_STATUS_MEANINGS
from services.gateway.transport.status import STATUS_BY_ERROR, status_for


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (errors.InvalidInput("samples", "empty"), grpc.StatusCode.INVALID_ARGUMENT),
        (errors.ModelNotFound("gone"), grpc.StatusCode.NOT_FOUND),
        (errors.ModelNotReady("loading"), grpc.StatusCode.UNAVAILABLE),
        (errors.VersionUnloaded("rolled back"), grpc.StatusCode.ABORTED),
        (errors.BackendUnavailable("down"), grpc.StatusCode.UNAVAILABLE),
        (errors.BackendOverloaded("full"), grpc.StatusCode.RESOURCE_EXHAUSTED),
        (errors.DeadlineExceeded("late"), grpc.StatusCode.DEADLINE_EXCEEDED),
        (errors.ModelContractError("odd"), grpc.StatusCode.FAILED_PRECONDITION),
        (errors.BackendError("broken"), grpc.StatusCode.INTERNAL),
    ],
)
def test_each_domain_error_has_its_status(
    error: errors.GatewayError, code: grpc.StatusCode
) -> None:
    assert status_for(error) == code


def test_invalid_input_message_names_field_and_reason() -> None:
    assert errors.InvalidInput("samples[2]", "empty").message == "samples[2]: empty"


def test_every_model_server_code_has_a_row_and_each_row_a_client_code() -> None:
    assert set(BACKEND_STATUS_MEANINGS) == set(grpc.StatusCode) - {grpc.StatusCode.OK}
    for meaning in BACKEND_STATUS_MEANINGS.values():
        assert meaning.error in STATUS_BY_ERROR
