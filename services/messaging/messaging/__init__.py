"""Family Story messaging: two-way threads between a family and its workers."""
