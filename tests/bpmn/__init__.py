"""Small BPMN/DMN models written for the loader tests, and helpers to write more inline."""
