"""Repository-local pytest settings only; the plugin itself loads through its pytest11 entry point."""
