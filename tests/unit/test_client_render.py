"""The client's output, from gateway responses built here: lines for people, and one line of
protobuf JSON per response for scripts."""

from __future__ import annotations

import json

from services.client import render
from services.generated.gateway.v1 import gateway_pb2

AVAILABLE = gateway_pb2.MODEL_VERSION_STATE_AVAILABLE
UNLOADING = gateway_pb2.MODEL_VERSION_STATE_UNLOADING


def ref(name: str, version: int) -> gateway_pb2.ModelVersionRef:
    return gateway_pb2.ModelVersionRef(name=name, version=version)


def classify_response() -> gateway_pb2.ClassifyResponse:
    return gateway_pb2.ClassifyResponse(
        classifications=[
            gateway_pb2.Classification(
                class_id=0, class_name="class_0", probabilities=[0.9712, 0.0211, 0.0077]
            ),
            gateway_pb2.Classification(
                class_id=2, class_name="class_2", probabilities=[0.01, 0.04, 0.95]
            ),
        ],
        class_names=["class_0", "class_1", "class_2"],
        model=ref("classifier", 3),
    )


def test_classify_names_each_sample_its_class_and_the_other_probabilities() -> None:
    lines = render.classify(classify_response(), ["wine row 0 (true class class_0)", "sample 2"])

    assert lines == [
        "classifier version 3",
        "wine row 0 (true class class_0): class_0  0.97  (class_1 0.02, class_2 0.01)",
        "sample 2:                        class_2  0.95  (class_0 0.01, class_1 0.04)",
    ]


def test_classify_numbers_samples_it_was_given_no_names_for() -> None:
    lines = render.classify(classify_response(), [])

    assert [line.split(":")[0] for line in lines[1:]] == ["sample 1", "sample 2"]


def test_digits_are_beside_their_file_names_with_their_probability() -> None:
    seven = [0.0] * 10
    seven[7] = 0.993
    one = [0.0] * 10
    one[1] = 0.61
    response = gateway_pb2.RecognizeDigitsResponse(
        predictions=[
            gateway_pb2.DigitPrediction(digit=7, probabilities=seven),
            gateway_pb2.DigitPrediction(digit=1, probabilities=one),
        ],
        model=ref("cnn", 2),
    )

    lines = render.digits(response, ["digits/seven.png", "one.jpg"])

    assert lines == ["cnn version 2", "digits/seven.png: 7  (0.99)", "one.jpg:          1  (0.61)"]


def test_a_digit_0_is_an_answer() -> None:
    response = gateway_pb2.RecognizeDigitsResponse(
        predictions=[gateway_pb2.DigitPrediction(digit=0, probabilities=[1.0] + [0.0] * 9)]
    )
    # No model in the response: no line for it.
    assert render.digits(response, ["zero.png"]) == ["zero.png: 0  (1.00)"]


def test_a_forecast_of_airpassengers_is_labelled_by_the_months_after_1959() -> None:
    response = gateway_pb2.ForecastResponse(
        values=[415.8836364746094, 391.04, 430.96], model=ref("forecaster", 1)
    )
    # The 132 training months of AirPassengers: January 1949 to December 1959.
    label = render.months_after(1949, 1, known=132)

    lines = render.forecast(response, label, decimals=1)

    assert lines == ["forecaster version 1", "1960-01  415.9", "1960-02  391.0", "1960-03  431.0"]


def test_month_labels_cross_years() -> None:
    label = render.months_after(1949, 1, known=11)  # the last known month is 1949-11
    assert [label(step) for step in (1, 2, 14)] == ["1949-12", "1950-01", "1951-01"]


def test_a_forecast_of_a_history_without_dates_counts_steps_ahead() -> None:
    response = gateway_pb2.ForecastResponse(values=[1.5, 2.25])

    lines = render.forecast(response, render.steps_ahead, decimals=2)

    assert lines == ["t+1  1.50", "t+2  2.25"]


def test_a_streamed_forecast_is_one_line_per_value_after_the_model_once() -> None:
    points = [
        gateway_pb2.StreamForecastResponse(step=step, value=value, model=ref("forecaster", 4))
        for step, value in [(1, 417.04), (2, 0.0)]
    ]

    lines = list(render.forecast_stream(iter(points), render.steps_ahead, decimals=1))

    assert lines == ["forecaster version 4", "t+1  417.0", "t+2  0.0"]


def test_forecast_decimals_show_four_significant_digits_of_the_history() -> None:
    assert render.forecast_decimals([112.0, 622.0]) == 1
    assert render.forecast_decimals([0.5, -0.7071]) == 4
    assert render.forecast_decimals([12.0, 30.5]) == 2
    assert render.forecast_decimals([123456.0]) == 1
    assert render.forecast_decimals([0.0]) == 1


def test_similar_words_are_aligned_with_three_decimals() -> None:
    response = gateway_pb2.SimilarWordsResponse(
        neighbors=[
            gateway_pb2.Neighbor(word="premier", score=0.81234),
            gateway_pb2.Neighbor(word="pm", score=0.7),
        ],
        model=ref("word2vec", 1),
    )

    assert render.similar_words(response) == [
        "word2vec version 1",
        "premier  0.812",
        "pm       0.700",
    ]


def test_codes_are_rounded_with_the_reconstruction_error_only_when_there_is_one() -> None:
    with_error = gateway_pb2.LatentCode(values=[0.123, -1.5, 2.0], reconstruction_error=0.012345)
    without = gateway_pb2.LatentCode(values=[0.0, 1.0, -0.004])
    response = gateway_pb2.EncodeResponse(codes=[with_error, without], model=ref("autoencoder", 1))

    lines = render.codes(response, ["seven.png", "x.png"])

    assert lines == [
        "autoencoder version 1",
        "seven.png: error 0.0123  code 0.12 -1.50 2.00",
        "x.png:     code 0.00 1.00 -0.00",
    ]


def list_models_response() -> gateway_pb2.ListModelsResponse:
    return gateway_pb2.ListModelsResponse(
        models=[
            gateway_pb2.ModelInfo(
                name="classifier",
                rpc="Classify",
                serving_version=2,
                versions=[
                    gateway_pb2.ModelVersionStatus(version=2, state=AVAILABLE),
                    gateway_pb2.ModelVersionStatus(version=1, state=UNLOADING),
                ],
            ),
            gateway_pb2.ModelInfo(name="cnn", rpc="RecognizeDigits"),
        ]
    )


def test_list_models_is_a_table_with_aligned_columns() -> None:
    assert render.models(list_models_response()) == [
        "MODEL       RPC              SERVING  VERSIONS",
        "classifier  Classify         2        2 available, 1 unloading",
        "cnn         RecognizeDigits  none     none",
    ]


def test_get_model_shows_the_versions_and_each_signatures_tensors() -> None:
    tensor = gateway_pb2.TensorInfo
    response = gateway_pb2.GetModelResponse(
        model=gateway_pb2.ModelInfo(
            name="forecaster",
            rpc="Forecast",
            serving_version=1,
            versions=[gateway_pb2.ModelVersionStatus(version=1, state=AVAILABLE)],
            signatures=[
                gateway_pb2.SignatureInfo(
                    name="step",
                    inputs=[
                        tensor(name="state", dtype="float32", shape=[-1, 64]),
                        tensor(name="value", dtype="float32", shape=[-1]),
                    ],
                    outputs=[tensor(name="min_value", dtype="float32", shape=[])],
                )
            ],
        )
    )

    assert render.model(response) == [
        "model    forecaster",
        "rpc      Forecast",
        "serving  1",
        "versions 1 available",
        "signature step",
        "  input   state      float32  [?, 64]",
        "  input   value      float32  [?]",
        "  output  min_value  float32  scalar",
    ]


def test_json_is_one_line_with_proto_field_names_and_zero_values() -> None:
    response = gateway_pb2.ClassifyResponse(
        classifications=[gateway_pb2.Classification(class_id=0, class_name="class_0")],
        model=ref("classifier", 1),
    )

    line = render.json_line(response)

    assert "\n" not in line
    assert json.loads(line) == {
        "classifications": [{"class_id": 0, "class_name": "class_0", "probabilities": []}],
        "class_names": [],
        # The protobuf JSON mapping writes int64 as a string.
        "model": {"name": "classifier", "version": "1"},
    }


def test_json_of_list_models_leaves_out_the_signatures_it_never_fills() -> None:
    models = json.loads(render.json_line(list_models_response()))["models"]

    assert [sorted(model) for model in models] == [
        ["name", "rpc", "serving_version", "versions"]
    ] * 2
    assert models[1]["serving_version"] == "0"


def test_json_of_get_model_keeps_its_signatures() -> None:
    response = gateway_pb2.GetModelResponse(model=gateway_pb2.ModelInfo(name="cnn"))

    assert json.loads(render.json_line(response))["model"]["signatures"] == []


def test_answers_beyond_the_names_given_are_numbered_not_left_out() -> None:
    response = gateway_pb2.RecognizeDigitsResponse(
        predictions=[gateway_pb2.DigitPrediction(digit=d, probabilities=[0.1] * 10) for d in (4, 5)]
    )

    assert render.digits(response, ["four.png"]) == ["four.png: 4  (0.10)", "image 2:  5  (0.10)"]
