from stormwatch_alerting.app import run_service

run_service()
