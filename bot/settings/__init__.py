"""Everything users write in `config/*.yaml`, validated once at the edge into typed objects."""
