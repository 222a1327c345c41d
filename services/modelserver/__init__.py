"""A local stand-in for TensorFlow Serving's `tensorflow_model_server`.

It reads the same flags and model config files, follows the same model-repository layout
(`<base_path>/<integer version>/saved_model.pb`) and answers TensorFlow Serving's gRPC API
(`tensorflow.serving.PredictionService` and `ModelService`) with the same status codes and
messages, so code tested against it behaves the same against the real server.

Entry points: `python -m services.modelserver --help`, or `start_model_server` in
`services.modelserver.server` for tests.
"""
