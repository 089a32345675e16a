"""Phasegate engine: the domain core, the BPMN adapter, persistence and the service layer.

Nothing in this package imports Flask; the web package and the CLI call `engine.services`.
"""
__version__ = "0.1.0"
