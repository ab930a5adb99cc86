"""Processes the delivery fault-injection tests and benchmark run: an OTLP receiver and a recorder."""
