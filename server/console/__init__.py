"""The web console: server-rendered pages (Jinja2) for supervisors, reviewers and hospital staff."""
