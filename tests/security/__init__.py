"""The red-team suite of issue 11: escape attempts that domain code must not get away with."""
