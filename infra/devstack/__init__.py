"""The local stack: template.yaml deployed into a moto server, with our handlers run in-process."""
