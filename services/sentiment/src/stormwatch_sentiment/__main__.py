from stormwatch_sentiment.app import run_service

run_service()
