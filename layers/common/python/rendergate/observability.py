"""Logging, created once per process."""

from aws_lambda_powertools import Logger

logger = Logger()
