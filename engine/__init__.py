"""Phasegate engine: the domain core, the BPMN adapter, persistence and the service layer.

Nothing in this package imports Flask; the web package and the CLI call `engine.services`.
"""
__version__ = "0.1.0"

import logging as _logging

# A library logs; the application (CLI, gunicorn) decides where logs go.
_logging.getLogger("phasegate").addHandler(_logging.NullHandler())
