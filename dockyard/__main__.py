from dockyard.process import run

run()
