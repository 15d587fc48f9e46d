"""Plan and apply a load: the planner, the fast construction path and the public functions."""
