"""Training jobs: each learns one model and publishes it as a new integer version of a SavedModel.

Run them with ``python -m training <model>``; versions land in ``<models-dir>/<model>/<version>/``,
the layout TensorFlow Serving (and our stand-in model server) polls.
"""
