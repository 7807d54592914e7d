"""Cost tables read from the annotated graph (one cost implementation: resdsl/ir/ops.py)."""
