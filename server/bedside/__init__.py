"""The bedside web app (床旁核查): served as built static files, plus the ward board a browser device reads."""
