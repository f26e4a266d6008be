"""Case assignment for supervisors: single, bulk by filter, CSV upload with a validation
preview, automatic distribution (over portal.assignment.operations)."""
