"""Runs the whole suite locally: model server and gateway as child processes (`make run`)."""
