"""rendergate: the shared library every function of the pipeline uses."""
