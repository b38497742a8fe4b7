"""Building blocks that models share across families (the floor above the animator interface)."""
