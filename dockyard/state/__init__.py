"""What is there: the host dockyard runs on and the ledger of what dockyard owns on it."""
