"""Conformance of the strict loader over the public BPMN corpus (../shared/bpmn-corpus)."""
