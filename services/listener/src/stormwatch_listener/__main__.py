from stormwatch_listener.app import run_service

run_service()
