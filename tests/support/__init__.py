"""Helpers shared by the tests: sample events, images, AWS fixtures built from template.yaml."""
