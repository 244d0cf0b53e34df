"""Plotly figures of a study's analysis, the self-contained HTML report and the dashboard hook-up."""
