"""One module per CLI command: parse nothing, print results, raise ClosebellError on failure."""
