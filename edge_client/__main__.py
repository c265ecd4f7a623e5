"""`python -m edge_client` = `bedcheck-edge`."""

from edge_client.cli import app

app(prog_name="bedcheck-edge")
