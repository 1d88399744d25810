"""Jinja2 templates of the HTML reports (installed as ``tfvis.templates``)."""
