"""A small command-line client of the gateway, for trying the suite without writing code."""
