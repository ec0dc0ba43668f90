"""Panel components for kvmrpa (installed as ``kvmrpa.widgets``)."""
