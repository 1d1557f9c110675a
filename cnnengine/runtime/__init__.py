"""Execution: the CPU op table, passes, planner and executor."""
