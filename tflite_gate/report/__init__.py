"""The Report model and the reporters that read it."""
