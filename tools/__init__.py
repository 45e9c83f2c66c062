"""Tools for the project's maintainers that are not part of the installable library."""
