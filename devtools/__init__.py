"""Tools for developing dockyard: throwaway network namespaces and temporary roots."""
