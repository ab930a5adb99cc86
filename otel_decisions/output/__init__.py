"""Output: tables (terminal, CSV, JSON, Markdown), the HTML evidence report (Jinja2 templates with
autoescape) and trace files for Jaeger.

Example::

    from otel_decisions.output.tables import render_rows
    from otel_decisions.output.report import write_report
"""
