"""Small example models, built in code so the repository holds no binary blobs."""
